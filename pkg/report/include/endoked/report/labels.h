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
                                                    // stated) emr esd biopsy not_removed
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
/// diminutive ≤ 5 mm < small < 10 mm ≤ large.
std::string size_class(double mm);

struct PolypLabel {
  Field<std::string> segment, morphology, paris, removal, histology, dysplasia, group, size_class;
  Field<double> size_mm;
  int quantity = 1;            // polyps this description covers; −1: "multiple", unknown number
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
