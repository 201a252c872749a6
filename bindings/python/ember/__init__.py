"""ember's pure-Python helpers. `ember.sklearn` exports fitted scikit-learn
preprocessing to the pipeline.json that ember's C++ Pipeline loads."""

__all__ = ["sklearn"]
