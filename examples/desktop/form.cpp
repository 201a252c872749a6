// A Qt 6 form for a model: one field per feature of its schema (a line for numbers and
// text, a check box for booleans, a list for categories). As the user types, the record
// is validated against the schema and each field shows its own error; once the record is
// valid, the form shows the prediction and the stage that served it.
//
//   form MODEL_DIR                          # a window
//   form MODEL_DIR --selftest SHOT.png      # types into the form like a user, checks the
//                                           # labels, writes a screenshot, exits 0 or 1
//
// Offscreen: QT_QPA_PLATFORM=offscreen. Records are flat (top-level properties).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QTest>
#include <QVBoxLayout>
#include <QWidget>

#include <ember/ember.hpp>

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A number as typed is written as a JSON number when it reads as one, otherwise as a
// string, so that the schema (not the form) says what is wrong with it.
std::string json_number(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const bool number = !text.empty() && end == text.c_str() + text.size() && std::isfinite(v) &&
                      text.find_first_of("xXnN") == std::string::npos;
  return number ? text : json_string(text);
}

class Form : public QWidget {
 public:
  explicit Form(std::unique_ptr<ember::Model> model) : model_(std::move(model)) {
    setWindowTitle("ember: " + QString::fromStdString(model_->name().empty() ? "model" : model_->name()));
    auto* layout = new QVBoxLayout(this);
    auto* fields = new QFormLayout();
    layout->addLayout(fields);
    for (const auto& f : model_->schema().features()) {
      Field field{f.name, f.kind, nullptr, nullptr, nullptr, new QLabel()};
      field.error->setStyleSheet("color: #b00020");
      field.error->setObjectName(QString::fromStdString("error:" + f.name));
      QWidget* editor = nullptr;
      if (f.kind == ember::FeatureKind::kBoolean) {
        field.check = new QCheckBox();
        connect(field.check, &QCheckBox::stateChanged, this, [this] { update_answer(); });
        editor = field.check;
      } else if (f.kind == ember::FeatureKind::kCategory) {
        field.choice = new QComboBox();
        field.choice->addItem("");  // not chosen yet
        for (const auto& c : f.categories) field.choice->addItem(QString::fromStdString(c));
        connect(field.choice, &QComboBox::currentIndexChanged, this, [this] { update_answer(); });
        editor = field.choice;
      } else {
        field.line = new QLineEdit();
        field.line->setPlaceholderText(QString::fromStdString(std::string(ember::feature_kind_name(f.kind)) +
                                                              (f.required ? "" : ", optional")));
        connect(field.line, &QLineEdit::textChanged, this, [this] { update_answer(); });
        editor = field.line;
      }
      editor->setObjectName(QString::fromStdString(f.name));
      auto* row = new QVBoxLayout();
      row->addWidget(editor);
      row->addWidget(field.error);
      fields->addRow(QString::fromStdString(f.name), row);
      fields_.push_back(field);
    }
    answer_ = new QLabel();
    answer_->setObjectName("answer");
    answer_->setStyleSheet("font-weight: bold; padding: 8px");
    layout->addWidget(answer_);
    update_answer();
  }

  [[nodiscard]] std::string record() const {
    std::string json = "{";
    for (const auto& f : fields_) {
      std::string value;
      if (f.check != nullptr) {
        value = f.check->isChecked() ? "true" : "false";
      } else if (f.choice != nullptr) {
        if (f.choice->currentIndex() > 0) value = json_string(f.choice->currentText().toStdString());
      } else {
        const std::string text = f.line->text().trimmed().toStdString();
        if (!text.empty()) {
          value = f.kind == ember::FeatureKind::kText ? json_string(text) : json_number(text);
        }
      }
      if (value.empty()) continue;  // absent: the schema says whether it may be
      if (json.size() > 1) json += ", ";
      json += json_string(f.name) + ": " + value;
    }
    return json + "}";
  }

  [[nodiscard]] QString answer_text() const { return answer_->text(); }
  [[nodiscard]] QString error_text(const std::string& name) const {
    for (const auto& f : fields_) {
      if (f.name == name) return f.error->text();
    }
    return {};
  }

 private:
  struct Field {
    std::string name;
    ember::FeatureKind kind;
    QLineEdit* line;
    QCheckBox* check;
    QComboBox* choice;
    QLabel* error;
  };

  // Validates what is typed now; shows each field's error, or the prediction.
  void update_answer() {
    const std::string json = record();
    ember::ValidationReport report;
    (void)model_->schema().validate_into(json, parser_, row_, report);
    int missing = 0;
    for (auto& f : fields_) {
      QString text;
      for (const auto& e : report.errors()) {
        const bool own = e.instance_path == "/" + f.name;
        const bool absent = e.instance_path.empty() && e.keyword == "required" &&
                            e.message.find("\"" + f.name + "\"") != std::string::npos;
        if (own || absent) {
          if (absent) ++missing;
          text = QString::fromStdString(absent ? "required" : e.message);
          break;
        }
      }
      f.error->setText(text);
    }
    if (!report.ok()) {
      const auto wrong = static_cast<int>(report.errors().size()) - missing;
      answer_->setText(wrong > 0 ? QString("%1 field(s) to fix, %2 to fill in").arg(wrong).arg(missing)
                                 : QString("%1 field(s) to fill in").arg(missing));
      return;
    }
    ember::Prediction p;
    const ember::Status s = model_->predict(json, p);
    if (!s.ok()) {
      answer_->setText(QString::fromStdString("No answer: " + s.to_string()));
      return;
    }
    answer_->setText(QString("Prediction %1, served by %2").arg(p.value().value_or(NAN), 0, 'f', 4)
                         .arg(QString::fromStdString(p.served_by)));
  }

  std::unique_ptr<ember::Model> model_;
  std::vector<Field> fields_;
  QLabel* answer_ = nullptr;
  ember::JsonParser parser_;
  ember::FeatureRow row_;
};

// Types into the form as a user would: a wrong value first, then the right one.
int selftest(Form& form, const char* screenshot) {
  auto* tenure = form.findChild<QLineEdit*>("tenure");
  if (tenure == nullptr) {
    std::fprintf(stderr, "form: --selftest expects the churn model (no field 'tenure')\n");
    return 1;
  }
  QTest::keyClicks(tenure, "12x");
  const QString bad = form.error_text("tenure");
  std::printf("form: typed tenure '12x': field says '%s'; answer '%s'\n", bad.toStdString().c_str(),
              form.answer_text().toStdString().c_str());
  tenure->clear();
  QTest::keyClicks(tenure, "12");
  QTest::keyClicks(form.findChild<QLineEdit*>("monthly_charges"), "70.5");
  QTest::keyClicks(form.findChild<QLineEdit*>("support_calls"), "3");
  form.findChild<QCheckBox*>("autopay")->setChecked(true);
  form.findChild<QComboBox*>("plan")->setCurrentText("pro");
  form.findChild<QComboBox*>("region")->setCurrentText("east");
  QApplication::processEvents();
  const QString answer = form.answer_text();
  std::printf("form: record %s\n", form.record().c_str());
  std::printf("form: answer '%s'\n", answer.toStdString().c_str());
  if (!form.grab().save(screenshot)) {
    std::fprintf(stderr, "form: cannot write %s\n", screenshot);
    return 1;
  }
  std::printf("form: screenshot %s\n", screenshot);
  const bool ok = !bad.isEmpty() && answer.startsWith("Prediction ") && form.error_text("tenure").isEmpty();
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  const bool test = argc == 4 && std::string(argv[2]) == "--selftest";
  if (argc != 2 && !test) {
    std::fprintf(stderr, "usage: form MODEL_DIR [--selftest SCREENSHOT.png]\n");
    return 2;
  }
  auto model = ember::Model::load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "form: %s\n", model.status().to_string().c_str());
    return 1;
  }
  Form form(std::move(*model));
  form.resize(460, 520);
  form.show();
  if (test) return selftest(form, argv[3]);
  return QApplication::exec();
}
