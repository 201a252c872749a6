"""ember's pure-Python helpers: `ember.export_bundle` writes a trained model as a bundle
(schema, fitted preprocessing, TorchScript model, fallbacks, manifest with lineage and
checksums) that ember's C++ library and registry load; `ember.sklearn` exports fitted
scikit-learn preprocessing to the pipeline.json that ember's Pipeline loads;
`ember.reference` computes the reference statistics drift is measured against."""

__version__ = "0.1.0"

from ember.bundle import BundleError, export_bundle  # noqa: E402

__all__ = ["BundleError", "__version__", "export_bundle", "reference", "sklearn"]
