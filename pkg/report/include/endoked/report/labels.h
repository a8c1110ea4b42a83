#pragma once
// Structured exam labels read from a colonoscopy (+ pathology) report, whoever produced them
// (the rules, an LLM, or their ensemble), with evidence.
//
// Every field is {value, confidence, evidence}: value may be null ("the report does not say"),
// confidence is in [0, 1], evidence lists [begin, end) offsets into the report in Unicode code
// points (so Python's report[begin:end] shows it).
//
// JSON form (labels_to_json / labels_from_json; the LLM's reply schema is the same shape minus
// evidence offsets, see llm_reply_schema()):
//   {"labeller": "rules", "version": "rules-1/en-1", "language": "en",
//    "polyp_present": {"value": "positive", "confidence": 0.97, "evidence": [[120, 131], …]},
//    "polyp_count": {"value": 2, "exact": true, …},
//    "polyps": [{"segment": {…}, "size_mm": {…}, "size_class": {…}, "morphology": {…},
//                "paris": {…}, "removal": {…}, "histology": {…}, "dysplasia": {…},
//                "pathology_group": {…}, "quantity": 1, "evidence": [[…]]}],
//    "history_of_polypectomy": {…}, "bowel_prep": {…}, "caecum_reached": {…},
//    "notes": ["…"]}
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace endoked::report {

/// [begin, end) in bytes while labelling; labels_to_json converts to code points.
struct Span {
  std::int64_t begin = 0, end = 0;
  bool operator==(const Span& o) const { return begin == o.begin && end == o.end; }
};

template <typename T>
struct Field {
  std::optional<T> value;
  double confidence = 0;
  std::vector<Span> evidence;
  void set(T v, double c, Span s) {
    value = std::move(v);
    confidence = c;
    evidence.push_back(s);
  }
};

// Enumerations as strings (stable, readable in CSV/JSON). The allowed values:
extern const std::vector<std::string> kPresence;    // positive negative uncertain not_mentioned
extern const std::vector<std::string> kSegments;    // caecum ascending hepatic_flexure transverse
                                                    // splenic_flexure descending sigmoid rectum
extern const std::vector<std::string> kMorphology;  // pedunculated sessile flat
extern const std::vector<std::string> kParis;       // 0-Ip 0-Isp 0-Is 0-IIa 0-IIb 0-IIc 0-III
extern const std::vector<std::string> kRemoval;     // cold_snare hot_snare polypectomy (method not
                                                    // stated) emr esd forceps ablation (APC)
                                                    // biopsy not_removed
extern const std::vector<std::string>
    kHistology;  // hyperplastic_polyp tubular_adenoma
                 // tubulovillous_adenoma villous_adenoma sessile_serrated_lesion adenocarcinoma
                 // inflammatory other
extern const std::vector<std::string> kDysplasia;  // low high
extern const std::vector<std::string> kGroups;     // non_neoplastic adenoma cancer
extern const std::vector<std::string> kSizeClass;  // diminutive (≤5 mm) small (6–9) large (≥10)
extern const std::vector<std::string> kPrep;       // excellent good fair poor

/// EndoKED's pathology groups: hyperplastic/inflammatory → non_neoplastic; adenomas and
/// sessile serrated lesions → adenoma; adenocarcinoma → cancer; other → none.
std::optional<std::string> pathology_group(const std::string& histology);
/// Excised or ablated in this exam (GUIDELINE.md 7): every removal value but biopsy and
/// not_removed; false when the report does not say.
bool removed_today(const std::optional<std::string>& removal);
/// diminutive ≤ 5 mm < small < 10 mm ≤ large.
std::string size_class(double mm);

/// How one labelled field is named, checked and asked for. Every consumer of the label schema
/// (JSON, offset conversion, the LLM's reply schema and its validator, the ensemble, the
/// evaluator) walks the fields through visit_fields() below instead of naming them.
struct FieldSpec {
  const char* key;                                 // JSON key
  const std::vector<std::string>* allowed = nullptr;  // string fields: the allowed values
  bool asked = true;      // in the LLM's reply (false: derived from another field)
  bool nullable = true;   // false: the value is required (polyp_present)
  bool positive = false;  // numbers: > 0 (size) — integers: ≥ 0 (counts)
  const char* truth_key = nullptr;  // the synthetic truth's key when it differs
  bool scored = true;     // compared with the truth field by field (false: a rule of its own)
  const char* truth() const { return truth_key ? truth_key : key; }
};

struct PolypLabel {
  Field<std::string> segment, morphology, paris, removal, histology, dysplasia, group, size_class;
  Field<double> size_mm;
  int quantity = 1;            // polyps this description covers; −1: "multiple", unknown number
                               // (at least 2 when counting)
  std::vector<Span> evidence;  // the sentences it was read from
};

struct ExamLabels {
  std::string labeller;  // rules | llm | ensemble
  std::string version;   // labeller + lexicon/prompt versions
  std::string language;  // en | zh
  Field<std::string> polyp_present;
  Field<std::int64_t> polyp_count;
  bool count_exact = true;  // false: "at least polyp_count"
  std::vector<PolypLabel> polyps;
  Field<bool> history_of_polypectomy, caecum_reached;
  Field<std::string> bowel_prep;
  std::vector<std::string> notes;  // why a value is uncertain (LLM failures, disagreement)
};

extern const FieldSpec kPolypPresentSpec;

/// The label schema, declared once: f(const FieldSpec&, member pointer) for every field of a
/// polyp, in JSON order. Use with `obj.*member` (visit_fields below), or on two objects at once
/// (the ensemble fills one polyp's fields from another's).
template <class F>
void polyp_fields(F&& f) {
  static const FieldSpec segment{"segment", &kSegments};
  static const FieldSpec size_mm{"size_mm", nullptr, true, true, true, nullptr, false};
  static const FieldSpec size_class{"size_class", &kSizeClass, false, true, false, nullptr, false};
  static const FieldSpec morphology{"morphology", &kMorphology};
  static const FieldSpec paris{"paris", &kParis, true, true, false, nullptr, false};
  static const FieldSpec removal{"removal", &kRemoval};
  static const FieldSpec histology{"histology", &kHistology, true, true, false, "pathology"};
  static const FieldSpec dysplasia{"dysplasia", &kDysplasia};
  static const FieldSpec group{"pathology_group", &kGroups, false};
  f(segment, &PolypLabel::segment);
  f(size_mm, &PolypLabel::size_mm);
  f(size_class, &PolypLabel::size_class);
  f(morphology, &PolypLabel::morphology);
  f(paris, &PolypLabel::paris);
  f(removal, &PolypLabel::removal);
  f(histology, &PolypLabel::histology);
  f(dysplasia, &PolypLabel::dysplasia);
  f(group, &PolypLabel::group);
}

/// The same for the exam-level fields (polyps are visited per polyp).
template <class F>
void exam_fields(F&& f) {
  static const FieldSpec count{"polyp_count", nullptr, true, true, true, nullptr, false};
  static const FieldSpec history{"history_of_polypectomy"};
  static const FieldSpec prep{"bowel_prep", &kPrep};
  static const FieldSpec caecum{"caecum_reached"};
  f(kPolypPresentSpec, &ExamLabels::polyp_present);
  f(count, &ExamLabels::polyp_count);
  f(history, &ExamLabels::history_of_polypectomy);
  f(prep, &ExamLabels::bowel_prep);
  f(caecum, &ExamLabels::caecum_reached);
}

/// v(const FieldSpec&, Field<T>&) for every field of one polyp or one exam (const or not).
template <class V>
void visit_fields(PolypLabel& p, V&& v) {
  polyp_fields([&](const FieldSpec& s, auto m) { v(s, p.*m); });
}
template <class V>
void visit_fields(const PolypLabel& p, V&& v) {
  polyp_fields([&](const FieldSpec& s, auto m) { v(s, p.*m); });
}
template <class V>
void visit_fields(ExamLabels& l, V&& v) {
  exam_fields([&](const FieldSpec& s, auto m) { v(s, l.*m); });
}
template <class V>
void visit_fields(const ExamLabels& l, V&& v) {
  exam_fields([&](const FieldSpec& s, auto m) { v(s, l.*m); });
}

/// Code-point offsets when `report` is given (else the byte offsets as they are).
nlohmann::json labels_to_json(const ExamLabels& labels, const std::string& report = {});
/// Parses labels_to_json's form (offsets kept as written). Throws endoked::Error naming the
/// offending key when the JSON does not follow the schema.
ExamLabels labels_from_json(const nlohmann::json& j);

/// Integer code of polyp_present for numeric label columns: positive 1, negative 0,
/// uncertain −1, not_mentioned −2.
int presence_code(const std::string& presence);

/// The text of each byte span of `report` (spans outside it are skipped).
std::vector<std::string> evidence_text(const std::string& report, const std::vector<Span>& spans);

/// Rewrites every evidence span from code-point offsets (labels read back from JSON) to byte
/// offsets into `report`.
void code_points_to_bytes(ExamLabels& labels, const std::string& report);

}  // namespace endoked::report
