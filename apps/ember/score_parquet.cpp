// ember score's Parquet input and output, through Apache Arrow's C++ libraries (those
// the pyarrow wheel ships). Built when CMake finds them (EMBER_WITH_PARQUET).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>

#include "score_io.hpp"

namespace ember_cli::score {

namespace {

using ember::Cell;
using ember::ColumnView;
using ember::Result;
using ember::Status;

// Arrow's memory: jemalloc where the libraries have it (unless ARROW_DEFAULT_MEMORY_POOL
// chooses), else the system's. The wheel's default, mimalloc, returns its pages to the
// kernel between chunks, and zeroing them again took half the time of a Parquet run
// (perf: clear_page_erms) once other processes had used the machine's memory.
arrow::MemoryPool* memory_pool() {
  static arrow::MemoryPool* const pool = [] {
    if (const char* chosen = std::getenv("ARROW_DEFAULT_MEMORY_POOL"); chosen != nullptr && *chosen != '\0') {
      return arrow::default_memory_pool();
    }
    arrow::MemoryPool* jemalloc = nullptr;
    if (arrow::jemalloc_memory_pool(&jemalloc).ok() && jemalloc != nullptr) return jemalloc;
    return arrow::system_memory_pool();
  }();
  return pool;
}

Status from_arrow(const arrow::Status& st, const std::filesystem::path& path) {
  if (st.ok()) return {};
  if (st.IsIOError()) return ember::not_found("cannot read '" + path.string() + "': " + st.message());
  return ember::invalid_argument("'" + path.string() + "': " + st.ToString());
}

std::optional<ColumnView::Type> native_type(arrow::Type::type id) {
  switch (id) {
    case arrow::Type::DOUBLE: return ColumnView::Type::kFloat64;
    case arrow::Type::FLOAT: return ColumnView::Type::kFloat32;
    case arrow::Type::INT64: return ColumnView::Type::kInt64;
    case arrow::Type::INT32: return ColumnView::Type::kInt32;
    case arrow::Type::INT16: return ColumnView::Type::kInt16;
    case arrow::Type::INT8: return ColumnView::Type::kInt8;
    case arrow::Type::UINT64: return ColumnView::Type::kUInt64;
    case arrow::Type::UINT32: return ColumnView::Type::kUInt32;
    case arrow::Type::UINT16: return ColumnView::Type::kUInt16;
    case arrow::Type::UINT8: return ColumnView::Type::kUInt8;
    default: return std::nullopt;
  }
}

// Element i of an array as a cell; `ok` false for a type ember cannot read.
Cell cell_of(const arrow::Array& a, std::int64_t i, bool& ok) {
  Cell c;
  if (a.IsNull(i)) {
    c.type = Cell::Type::kNull;
    return c;
  }
  switch (a.type_id()) {
    case arrow::Type::DOUBLE:
      c.type = Cell::Type::kNumber;
      c.number = static_cast<const arrow::DoubleArray&>(a).Value(i);
      break;
    case arrow::Type::FLOAT:
      c.type = Cell::Type::kNumber;
      c.number = static_cast<const arrow::FloatArray&>(a).Value(i);
      break;
    case arrow::Type::INT64: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::Int64Array&>(a).Value(i); break;
    case arrow::Type::INT32: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::Int32Array&>(a).Value(i); break;
    case arrow::Type::INT16: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::Int16Array&>(a).Value(i); break;
    case arrow::Type::INT8: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::Int8Array&>(a).Value(i); break;
    case arrow::Type::UINT64:
      c.type = Cell::Type::kUnsigned;
      c.unsigned_integer = static_cast<const arrow::UInt64Array&>(a).Value(i);
      break;
    case arrow::Type::UINT32: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::UInt32Array&>(a).Value(i); break;
    case arrow::Type::UINT16: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::UInt16Array&>(a).Value(i); break;
    case arrow::Type::UINT8: c.type = Cell::Type::kInteger; c.integer = static_cast<const arrow::UInt8Array&>(a).Value(i); break;
    case arrow::Type::BOOL:
      c.type = Cell::Type::kBool;
      c.integer = static_cast<const arrow::BooleanArray&>(a).Value(i) ? 1 : 0;
      break;
    case arrow::Type::STRING:
      c.type = Cell::Type::kString;
      c.text = static_cast<const arrow::StringArray&>(a).GetView(i);
      break;
    case arrow::Type::LARGE_STRING:
      c.type = Cell::Type::kString;
      c.text = static_cast<const arrow::LargeStringArray&>(a).GetView(i);
      break;
    case arrow::Type::STRING_VIEW:
      c.type = Cell::Type::kString;
      c.text = static_cast<const arrow::StringViewArray&>(a).GetView(i);
      break;
    case arrow::Type::DICTIONARY: {
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      return cell_of(*d.dictionary(), d.GetValueIndex(i), ok);
    }
    default: ok = false; break;
  }
  return c;
}

bool readable(const arrow::DataType& t) {
  if (native_type(t.id()) || t.id() == arrow::Type::BOOL || t.id() == arrow::Type::STRING ||
      t.id() == arrow::Type::LARGE_STRING || t.id() == arrow::Type::STRING_VIEW || t.id() == arrow::Type::NA) {
    return true;
  }
  if (t.id() == arrow::Type::DICTIONARY) return readable(*static_cast<const arrow::DictionaryType&>(t).value_type());
  return false;
}

std::optional<KeyType> key_type_of(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::INT64: case arrow::Type::INT32: case arrow::Type::INT16: case arrow::Type::INT8:
    case arrow::Type::UINT32: case arrow::Type::UINT16: case arrow::Type::UINT8:
      return KeyType::kInt64;
    case arrow::Type::DOUBLE: case arrow::Type::FLOAT: return KeyType::kFloat64;
    case arrow::Type::BOOL: return KeyType::kBool;
    case arrow::Type::STRING: case arrow::Type::LARGE_STRING: case arrow::Type::STRING_VIEW: return KeyType::kString;
    case arrow::Type::DICTIONARY: return key_type_of(*static_cast<const arrow::DictionaryType&>(t).value_type());
    default: return std::nullopt;
  }
}

class ParquetReader final : public Reader {
 public:
  ParquetReader(ReaderOptions options, const ember::Schema& schema) : options_(std::move(options)), schema_(schema) {}

  Status open() {
    auto file = arrow::io::ReadableFile::Open(options_.path.string(), memory_pool());
    if (!file.ok()) return ember::not_found("cannot read '" + options_.path.string() + "': " + file.status().message());
    try {
      auto reader = parquet::arrow::OpenFile(*file, memory_pool());
      if (!reader.ok()) return from_arrow(reader.status(), options_.path);
      reader_ = std::move(reader).ValueOrDie();
    } catch (const parquet::ParquetException& e) {
      return ember::invalid_argument("'" + options_.path.string() + "' is not a readable Parquet file: " + e.what());
    }
    std::shared_ptr<arrow::Schema> schema;
    if (auto st = from_arrow(reader_->GetSchema(&schema), options_.path); !st.ok()) return st;
    std::map<std::string, std::size_t, std::less<>> feature_of;
    for (std::size_t f = 0; f < schema_.features().size(); ++f) feature_of.emplace(schema_.features()[f].name, f);
    for (int i = 0; i < schema->num_fields(); ++i) {
      const auto& field = schema->field(i);
      const bool key = std::find(options_.keys.begin(), options_.keys.end(), field->name()) != options_.keys.end();
      const bool feature = feature_of.count(field->name()) > 0;
      if (!key && !feature) continue;
      if (field->type()->num_fields() > 0) {
        return ember::invalid_argument("column '" + field->name() + "' of '" + options_.path.string() + "' is " +
                                       field->type()->ToString() + ": ember reads scalar columns");
      }
      if (feature && !readable(*field->type())) {
        return ember::invalid_argument("feature column '" + field->name() + "' of '" + options_.path.string() +
                                       "' is " + field->type()->ToString() +
                                       ", which ember cannot read (numbers, booleans and strings)");
      }
      columns_.push_back(i);
      if (feature) features_.push_back(field->name());
    }
    for (const auto& k : options_.keys) {
      const int i = schema->GetFieldIndex(k);
      if (i < 0) {
        std::string have;
        for (const auto& f : schema->fields()) have += (have.empty() ? "" : ", ") + f->name();
        return ember::invalid_argument("key column '" + k + "' is not in " + options_.path.filename().string() +
                                       " (its columns: " + have + ")");
      }
      auto type = key_type_of(*schema->field(i)->type());
      if (!type) {
        return ember::invalid_argument("key column '" + k + "' is " + schema->field(i)->type()->ToString() +
                                       ": keys are integers, floats, booleans or strings");
      }
      key_types_.push_back(*type);
    }
    if (!schema_.accepts_columns()) {
      return ember::failed_precondition(
          "the model's schema checks more than flat features (nested objects, arrays or combinators): "
          "give its records as JSON lines");
    }
    const auto meta = reader_->parquet_reader()->metadata();
    rows_total_ = static_cast<std::uint64_t>(meta->num_rows());
    return start_at(0);
  }

  Result<bool> read(std::size_t max_rows, Chunk& chunk) override {
    chunk.rows = 0;
    chunk.batch.reset();
    if (!pending_ || pending_->num_rows() == 0) {
      std::shared_ptr<arrow::RecordBatch> next;
      try {
        if (auto st = from_arrow(batches_->ReadNext(&next), options_.path); !st.ok()) return st;
      } catch (const parquet::ParquetException& e) {
        return ember::invalid_argument("'" + options_.path.string() + "': " + e.what());
      }
      if (!next) return false;
      pending_ = std::move(next);
    }
    const auto take = std::min<std::int64_t>(pending_->num_rows(), static_cast<std::int64_t>(max_rows));
    auto batch = pending_->Slice(0, take);
    pending_ = pending_->Slice(take);
    chunk.rows = static_cast<std::size_t>(take);
    chunk.first_row = static_cast<std::size_t>(position_);
    position_ += static_cast<std::uint64_t>(take);
    chunk.end_position = position_;
    chunk.batch = std::move(batch);
    return true;
  }

  Status decode(Chunk& chunk) const override {
    const auto batch = std::static_pointer_cast<arrow::RecordBatch>(chunk.batch);
    const auto n = static_cast<std::int64_t>(chunk.rows);
    chunk.refused.assign(chunk.rows, std::string());
    chunk.cells.clear();
    chunk.cells.reserve(features_.size());
    chunk.views.clear();
    for (const auto& name : features_) {
      const auto array = batch->GetColumnByName(name);
      ColumnView view;
      view.name = name;
      const auto native = native_type(array->type_id());
      if (native && array->null_count() == 0) {
        view.type = *native;
        const auto& data = *array->data();
        const auto width = static_cast<std::ptrdiff_t>(array->type()->byte_width());
        view.data = data.buffers[1]->data() + data.offset * width;
        view.stride = width;
      } else {
        auto& cells = chunk.cells.emplace_back(chunk.rows);
        bool ok = true;
        for (std::int64_t i = 0; i < n; ++i) cells[static_cast<std::size_t>(i)] = cell_of(*array, i, ok);
        if (!ok) return ember::internal_error("column '" + name + "' changed type within the file");
        view.type = ColumnView::Type::kCells;
        view.data = cells.data();
      }
      chunk.views.push_back(view);
    }
    chunk.keys.assign(options_.keys.size(), std::vector<Cell>(chunk.rows));
    for (std::size_t k = 0; k < options_.keys.size(); ++k) {
      const auto array = batch->GetColumnByName(options_.keys[k]);
      bool ok = true;
      for (std::int64_t i = 0; i < n; ++i) chunk.keys[k][static_cast<std::size_t>(i)] = cell_of(*array, i, ok);
    }
    return {};
  }

  Status seek(std::uint64_t position, std::size_t /*rows*/) override { return start_at(position); }

  [[nodiscard]] std::uint64_t size() const override { return rows_total_; }
  [[nodiscard]] bool rows_known() const override { return true; }
  [[nodiscard]] std::vector<KeyType> key_types() const override { return key_types_; }

 private:
  // Reads on from row `row`: from the row group that holds it, less the rows before it.
  Status start_at(std::uint64_t row) {
    const auto meta = reader_->parquet_reader()->metadata();
    std::vector<int> groups;
    std::uint64_t start = 0;
    for (int g = 0; g < meta->num_row_groups(); ++g) {
      const auto rows = static_cast<std::uint64_t>(meta->RowGroup(g)->num_rows());
      if (start + rows > row) groups.push_back(g);
      if (groups.empty()) start += rows;
    }
    if (row > rows_total_) return ember::data_loss("'" + options_.path.string() + "' has fewer rows than the interrupted run read");
    reader_->set_batch_size(std::int64_t{1} << 16);
    reader_->set_use_threads(true);
    try {
      auto batches = reader_->GetRecordBatchReader(groups, columns_);
      if (!batches.ok()) return from_arrow(batches.status(), options_.path);
      batches_ = std::move(batches).ValueOrDie();
    } catch (const parquet::ParquetException& e) {
      return ember::invalid_argument("'" + options_.path.string() + "': " + e.what());
    }
    pending_.reset();
    position_ = start;
    while (position_ < row) {  // skip into the row group
      Chunk skipped;
      auto got = read(static_cast<std::size_t>(row - position_), skipped);
      if (!got.ok()) return got.status();
      if (!*got) break;
    }
    return {};
  }

  ReaderOptions options_;
  const ember::Schema& schema_;
  std::unique_ptr<parquet::arrow::FileReader> reader_;
  std::unique_ptr<arrow::RecordBatchReader> batches_;
  std::shared_ptr<arrow::RecordBatch> pending_;
  std::vector<int> columns_;
  std::vector<std::string> features_;
  std::vector<KeyType> key_types_;
  std::uint64_t rows_total_ = 0;
  std::uint64_t position_ = 0;
};

std::shared_ptr<arrow::DataType> arrow_type(ember::DType t) {
  switch (t) {
    case ember::DType::kFloat32: return arrow::float32();
    case ember::DType::kInt64: return arrow::int64();
    case ember::DType::kInt32: return arrow::int32();
    case ember::DType::kInt8: return arrow::int8();
    case ember::DType::kUInt8: return arrow::uint8();
    case ember::DType::kBool: return arrow::boolean();
    default: return arrow::float64();
  }
}

std::shared_ptr<arrow::DataType> arrow_type(KeyType t) {
  switch (t) {
    case KeyType::kInt64: return arrow::int64();
    case KeyType::kFloat64: return arrow::float64();
    case KeyType::kBool: return arrow::boolean();
    case KeyType::kString: break;
  }
  return arrow::utf8();
}

class ParquetWriter final : public Writer {
 public:
  ParquetWriter(std::filesystem::path path, Layout layout) : path_(std::move(path)), layout_(std::move(layout)) {
    arrow::FieldVector fields;
    for (std::size_t k = 0; k < layout_.keys.size(); ++k) {
      fields.push_back(arrow::field(layout_.keys[k], arrow_type(layout_.key_types[k])));
    }
    for (const auto& o : layout_.outputs) fields.push_back(arrow::field(o.name, arrow_type(o.dtype)));
    if (layout_.served_by) fields.push_back(arrow::field("served_by", arrow::utf8()));
    schema_ = arrow::schema(std::move(fields));
  }

  static std::filesystem::path parts(const std::filesystem::path& path) { return path.string() + ".parts"; }
  std::filesystem::path part(std::uint64_t i) const {
    char name[48];
    std::snprintf(name, sizeof name, "part-%08llu.parquet", static_cast<unsigned long long>(i));
    return parts(path_) / name;
  }

  Status format(Chunk& chunk) const override {
    const auto rows = answered_rows(chunk);
    std::vector<std::unique_ptr<arrow::ArrayBuilder>> builders;
    for (const auto& f : schema_->fields()) {
      auto b = arrow::MakeBuilder(f->type(), memory_pool());
      if (!b.ok()) return from_arrow(b.status(), path_);
      builders.push_back(std::move(b).ValueOrDie());
    }
    arrow::Status st;
    std::size_t col = 0;
    for (std::size_t k = 0; k < layout_.keys.size(); ++k, ++col) {
      auto& b = *builders[col];
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r] >= 0) st &= append_key(b, layout_.key_types[k], chunk.keys[k][r]);
      }
    }
    for (const auto& o : layout_.outputs) {
      const auto& t = chunk.prediction.outputs[o.tensor].tensor;
      auto& b = *builders[col++];
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r] >= 0) st &= append_output(b, t, static_cast<std::size_t>(rows[r]) * o.per_row + o.offset);
      }
    }
    if (layout_.served_by) {
      auto& b = static_cast<arrow::StringBuilder&>(*builders[col]);
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r] >= 0) st &= b.Append(chunk.prediction.rows[static_cast<std::size_t>(rows[r])].served_by);
      }
    }
    if (!st.ok()) return from_arrow(st, path_);
    arrow::ArrayVector arrays;
    for (auto& b : builders) {
      std::shared_ptr<arrow::Array> a;
      if (auto s = b->Finish(&a); !s.ok()) return from_arrow(s, path_);
      arrays.push_back(std::move(a));
    }
    const auto n = arrays.empty() ? 0 : arrays[0]->length();
    chunk.out_batch = arrow::RecordBatch::Make(schema_, n, std::move(arrays));
    return {};
  }

  Status write(const Chunk& chunk) override {
    const auto batch = std::static_pointer_cast<arrow::RecordBatch>(chunk.out_batch);
    const auto target = part(written_);
    const auto tmp = target.string() + ".tmp";
    auto out = arrow::io::FileOutputStream::Open(tmp);
    if (!out.ok()) return ember::invalid_argument("cannot write '" + tmp + "': " + out.status().message());
    auto table = arrow::Table::FromRecordBatches(schema_, {batch});
    if (!table.ok()) return from_arrow(table.status(), path_);
    if (auto st = parquet::arrow::WriteTable(**table, memory_pool(), *out, std::int64_t{1} << 20);
        !st.ok()) {
      return ember::invalid_argument("cannot write '" + tmp + "': " + st.message());
    }
    if (auto st = (*out)->Close(); !st.ok()) return ember::invalid_argument("cannot write '" + tmp + "': " + st.message());
    std::error_code ec;
    std::filesystem::rename(tmp, target, ec);
    if (ec) return ember::invalid_argument("cannot write '" + target.string() + "': " + ec.message());
    ++written_;
    return {};
  }

  Result<std::uint64_t> sync() override { return written_; }

  Status truncate(std::uint64_t position) override {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parts(path_), ec)) {
      const auto name = entry.path().filename().string();
      unsigned long long i = 0;
      if (std::sscanf(name.c_str(), "part-%llu.parquet", &i) != 1 || i >= position ||
          entry.path().extension() != ".parquet") {
        std::filesystem::remove(entry.path(), ec);
      }
    }
    written_ = position;
    return {};
  }

  Status finish() override {
    const auto partial = path_.string() + ".partial";
    auto out = arrow::io::FileOutputStream::Open(partial);
    if (!out.ok()) return ember::invalid_argument("cannot write '" + partial + "': " + out.status().message());
    auto writer = parquet::arrow::FileWriter::Open(*schema_, memory_pool(), *out);
    if (!writer.ok()) return from_arrow(writer.status(), partial);
    for (std::uint64_t i = 0; i < written_; ++i) {
      const auto file = part(i);
      auto in = arrow::io::ReadableFile::Open(file.string(), memory_pool());
      if (!in.ok()) return ember::data_loss("cannot read '" + file.string() + "': " + in.status().message());
      auto reader = parquet::arrow::OpenFile(*in, memory_pool());
      if (!reader.ok()) return from_arrow(reader.status(), file);
      auto read = (*reader)->ReadTable();
      if (!read.ok()) return from_arrow(read.status(), file);
      const std::shared_ptr<arrow::Table> table = std::move(read).ValueOrDie();
      if (table->num_rows() == 0) continue;
      if (auto st = (*writer)->WriteTable(*table, table->num_rows()); !st.ok()) return from_arrow(st, partial);
    }
    if (auto st = (*writer)->Close(); !st.ok()) return from_arrow(st, partial);
    if (auto st = (*out)->Close(); !st.ok()) return from_arrow(st, partial);
    std::error_code ec;
    std::filesystem::rename(partial, path_, ec);
    if (ec) return ember::invalid_argument("cannot write '" + path_.string() + "': " + ec.message());
    std::filesystem::remove_all(parts(path_), ec);
    return {};
  }

 private:
  static arrow::Status append_key(arrow::ArrayBuilder& b, KeyType type, const Cell& c) {
    if (c.type == Cell::Type::kNull || c.type == Cell::Type::kAbsent) return b.AppendNull();
    switch (type) {
      case KeyType::kInt64: return static_cast<arrow::Int64Builder&>(b).Append(c.integer);
      case KeyType::kFloat64:
        return static_cast<arrow::DoubleBuilder&>(b).Append(c.type == Cell::Type::kNumber ? c.number
                                                                                         : static_cast<double>(c.integer));
      case KeyType::kBool: return static_cast<arrow::BooleanBuilder&>(b).Append(c.integer != 0);
      case KeyType::kString: break;
    }
    if (c.type == Cell::Type::kString) return static_cast<arrow::StringBuilder&>(b).Append(c.text);
    std::string text;
    append_csv_cell(text, c);
    return static_cast<arrow::StringBuilder&>(b).Append(text);
  }

  static arrow::Status append_output(arrow::ArrayBuilder& b, const ember::Tensor& t, std::size_t i) {
    switch (t.dtype()) {
      case ember::DType::kFloat32: return static_cast<arrow::FloatBuilder&>(b).Append(t.values<float>()[i]);
      case ember::DType::kFloat64: return static_cast<arrow::DoubleBuilder&>(b).Append(t.values<double>()[i]);
      case ember::DType::kInt64: return static_cast<arrow::Int64Builder&>(b).Append(t.values<std::int64_t>()[i]);
      case ember::DType::kInt32: return static_cast<arrow::Int32Builder&>(b).Append(t.values<std::int32_t>()[i]);
      case ember::DType::kInt8: return static_cast<arrow::Int8Builder&>(b).Append(t.values<std::int8_t>()[i]);
      case ember::DType::kUInt8: return static_cast<arrow::UInt8Builder&>(b).Append(t.values<std::uint8_t>()[i]);
      case ember::DType::kBool: return static_cast<arrow::BooleanBuilder&>(b).Append(t.values<bool>()[i]);
      default: return static_cast<arrow::DoubleBuilder&>(b).Append(t.at(i).value_or(NAN));
    }
  }

  std::filesystem::path path_;
  Layout layout_;
  std::shared_ptr<arrow::Schema> schema_;
  std::uint64_t written_ = 0;
};

}  // namespace

bool parquet_available() { return true; }

Result<std::unique_ptr<Reader>> open_parquet_reader(const ReaderOptions& options, const ember::Schema& schema) {
  auto reader = std::make_unique<ParquetReader>(options, schema);
  if (auto st = reader->open(); !st.ok()) return st;
  return std::unique_ptr<Reader>(std::move(reader));
}

Result<std::unique_ptr<Writer>> open_parquet_writer(const std::filesystem::path& path, const Layout& layout,
                                                    bool resume) {
  std::error_code ec;
  if (!resume) std::filesystem::remove_all(ParquetWriter::parts(path), ec);
  std::filesystem::create_directories(ParquetWriter::parts(path), ec);
  if (ec) return ember::invalid_argument("cannot create '" + ParquetWriter::parts(path).string() + "': " + ec.message());
  return std::unique_ptr<Writer>(std::make_unique<ParquetWriter>(path, layout));
}

}  // namespace ember_cli::score
