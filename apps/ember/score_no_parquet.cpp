// ember score without Apache Arrow: CSV and JSON lines only (EMBER_WITH_PARQUET off or
// pyarrow not found when ember was configured).
#include "score_io.hpp"

namespace ember_cli::score {

namespace {
ember::Status unavailable() {
  return ember::failed_precondition("this ember was built without Parquet support");
}
}  // namespace

bool parquet_available() { return false; }

ember::Result<std::unique_ptr<Reader>> open_parquet_reader(const ReaderOptions&, const ember::Schema&) {
  return unavailable();
}

ember::Result<std::unique_ptr<Writer>> open_parquet_writer(const std::filesystem::path&, const Layout&, bool) {
  return unavailable();
}

}  // namespace ember_cli::score
