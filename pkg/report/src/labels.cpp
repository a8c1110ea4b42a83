#include "endoked/report/labels.h"

#include <algorithm>

#include "endoked/core/error.h"

using nlohmann::json;

namespace endoked::report {

const std::vector<std::string> kPresence = {"positive", "negative", "uncertain", "not_mentioned"};
const std::vector<std::string> kSegments = {"caecum",     "ascending",       "hepatic_flexure",
                                            "transverse", "splenic_flexure", "descending",
                                            "sigmoid",    "rectum"};
const std::vector<std::string> kMorphology = {"pedunculated", "sessile", "flat"};
const std::vector<std::string> kParis = {"0-Ip",  "0-Isp", "0-Is", "0-IIa",
                                         "0-IIb", "0-IIc", "0-III"};
const std::vector<std::string> kRemoval = {"cold_snare", "hot_snare", "polypectomy",
                                           "emr",        "esd",       "forceps",
                                           "ablation",   "biopsy",    "not_removed"};
const std::vector<std::string> kHistology = {
    "hyperplastic_polyp",      "tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma",
    "sessile_serrated_lesion", "adenocarcinoma",  "inflammatory",          "other"};
const std::vector<std::string> kDysplasia = {"low", "high"};
const std::vector<std::string> kGroups = {"non_neoplastic", "adenoma", "cancer"};
const std::vector<std::string> kSizeClass = {"diminutive", "small", "large"};
const std::vector<std::string> kPrep = {"excellent", "good", "fair", "poor"};
const FieldSpec kPolypPresentSpec{"polyp_present", &kPresence, true, false};

std::optional<std::string> pathology_group(const std::string& h) {
  if (h == "hyperplastic_polyp" || h == "inflammatory") return std::string("non_neoplastic");
  if (h == "adenocarcinoma") return std::string("cancer");
  if (h == "tubular_adenoma" || h == "tubulovillous_adenoma" || h == "villous_adenoma" ||
      h == "sessile_serrated_lesion")
    return std::string("adenoma");
  return std::nullopt;
}

bool removed_today(const std::optional<std::string>& removal) {
  return removal && *removal != "biopsy" && *removal != "not_removed";
}

std::string size_class(double mm) {
  return mm <= 5 ? "diminutive" : (mm < 10 ? "small" : "large");
}

int presence_code(const std::string& p) {
  if (p == "positive") return 1;
  if (p == "negative") return 0;
  if (p == "uncertain") return -1;
  return -2;
}

std::vector<std::string> evidence_text(const std::string& report, const std::vector<Span>& spans) {
  std::vector<std::string> out;
  for (const auto& s : spans)
    if (s.begin >= 0 && s.begin <= s.end && s.end <= static_cast<std::int64_t>(report.size()))
      out.push_back(report.substr(static_cast<std::size_t>(s.begin),
                                  static_cast<std::size_t>(s.end - s.begin)));
  return out;
}

void code_points_to_bytes(ExamLabels& l, const std::string& report) {
  std::vector<std::int64_t> byte_at;  // code point index → byte offset
  for (std::size_t i = 0; i < report.size(); ++i)
    if ((static_cast<unsigned char>(report[i]) & 0xC0) != 0x80)
      byte_at.push_back(static_cast<std::int64_t>(i));
  byte_at.push_back(static_cast<std::int64_t>(report.size()));
  auto fix = [&](std::vector<Span>& spans) {
    for (auto& s : spans) {
      const auto at = [&](std::int64_t cp) {
        return cp < static_cast<std::int64_t>(byte_at.size())
                   ? byte_at[static_cast<std::size_t>(cp)]
                   : byte_at.back();
      };
      s = {at(s.begin), at(s.end)};
    }
  };
  const auto field = [&](const FieldSpec&, auto& f) { fix(f.evidence); };
  visit_fields(l, field);
  for (auto& p : l.polyps) {
    visit_fields(p, field);
    fix(p.evidence);
  }
}

namespace {

// Byte offset → code-point offset, computed once per report (empty: offsets stay bytes).
struct Offsets {
  std::vector<std::int32_t> cp;
  explicit Offsets(const std::string& report) {
    if (report.empty()) return;
    cp.resize(report.size() + 1);
    std::int32_t n = 0;
    for (std::size_t i = 0; i < report.size(); ++i) {
      cp[i] = n;
      if ((static_cast<unsigned char>(report[i]) & 0xC0) != 0x80) ++n;
    }
    cp[report.size()] = n;
  }
  std::int64_t operator()(std::int64_t b) const {
    if (cp.empty()) return b;
    return cp[static_cast<std::size_t>(
        std::clamp<std::int64_t>(b, 0, static_cast<std::int64_t>(cp.size()) - 1))];
  }
};

json spans_json(const std::vector<Span>& spans, const Offsets& at) {
  json a = json::array();
  for (const auto& s : spans) a.push_back({at(s.begin), at(s.end)});
  return a;
}

template <typename T>
json field_json(const Field<T>& f, const Offsets& report) {
  json j = {{"value", f.value ? json(*f.value) : json(nullptr)},
            {"confidence", f.confidence},
            {"evidence", spans_json(f.evidence, report)}};
  return j;
}

std::vector<Span> spans_from(const json& j, const std::string& key) {
  std::vector<Span> out;
  ENDOKED_CHECK(j.is_array(), "labels: '", key, "' must be an array of [begin, end]");
  for (const auto& s : j) {
    ENDOKED_CHECK(s.is_array() && s.size() == 2 && s[0].is_number_integer() &&
                      s[1].is_number_integer() && s[0].get<std::int64_t>() >= 0 &&
                      s[1].get<std::int64_t>() >= s[0].get<std::int64_t>(),
                  "labels: '", key, "' holds ", s.dump(), ", not [begin, end] with begin ≤ end");
    out.push_back({s[0].get<std::int64_t>(), s[1].get<std::int64_t>()});
  }
  return out;
}

void check_enum(const std::string& v, const std::vector<std::string>& allowed,
                const std::string& key) {
  ENDOKED_CHECK(std::find(allowed.begin(), allowed.end(), v) != allowed.end(), "labels: '", key,
                "' is '", v, "', not one of the allowed values");
}

template <typename T>
Field<T> field_from(const json& parent, const std::string& key,
                    const std::vector<std::string>* allowed = nullptr) {
  Field<T> f;
  if (!parent.contains(key)) return f;
  const json& j = parent.at(key);
  ENDOKED_CHECK(j.is_object() && j.contains("value"), "labels: '", key,
                "' must be an object with a value");
  const json& v = j.at("value");
  if (!v.is_null()) {
    if constexpr (std::is_same_v<T, std::string>) {
      ENDOKED_CHECK(v.is_string(), "labels: '", key, ".value' must be a string or null");
      if (allowed) check_enum(v.get<std::string>(), *allowed, key);
    } else if constexpr (std::is_same_v<T, bool>) {
      ENDOKED_CHECK(v.is_boolean(), "labels: '", key, ".value' must be true, false or null");
    } else {
      ENDOKED_CHECK(v.is_number(), "labels: '", key, ".value' must be a number or null");
    }
    f.value = v.get<T>();
  }
  if (j.contains("confidence")) {
    ENDOKED_CHECK(j["confidence"].is_number() && j["confidence"].get<double>() >= 0 &&
                      j["confidence"].get<double>() <= 1,
                  "labels: '", key, ".confidence' must be a number in [0, 1]");
    f.confidence = j["confidence"].get<double>();
  }
  if (j.contains("evidence")) f.evidence = spans_from(j["evidence"], key + ".evidence");
  return f;
}

}  // namespace

json labels_to_json(const ExamLabels& l, const std::string& text) {
  const Offsets report(text);
  json polyps = json::array();
  for (const auto& p : l.polyps) {
    json pj = json::object();
    visit_fields(p, [&](const FieldSpec& s, const auto& f) { pj[s.key] = field_json(f, report); });
    pj["quantity"] = p.quantity;
    pj["evidence"] = spans_json(p.evidence, report);
    polyps.push_back(std::move(pj));
  }
  json j = {{"labeller", l.labeller}, {"version", l.version}, {"language", l.language}};
  visit_fields(l, [&](const FieldSpec& s, const auto& f) { j[s.key] = field_json(f, report); });
  j["polyp_count"]["exact"] = l.count_exact;
  j["polyps"] = std::move(polyps);
  j["notes"] = l.notes;
  return j;
}

ExamLabels labels_from_json(const json& j) {
  ENDOKED_CHECK(j.is_object(), "labels: expected a JSON object, got ", j.type_name());
  ExamLabels l;
  l.labeller = j.value("labeller", "");
  l.version = j.value("version", "");
  l.language = j.value("language", "");
  const auto read = [](const json& parent) {
    return [&parent](const FieldSpec& s, auto& f) {
      using T = typename std::decay_t<decltype(f.value)>::value_type;
      ENDOKED_CHECK(s.nullable || parent.contains(s.key), "labels: '", s.key, "' is missing");
      f = field_from<T>(parent, s.key, s.allowed);
      ENDOKED_CHECK(s.nullable || f.value.has_value(), "labels: '", s.key, ".value' is null");
    };
  };
  visit_fields(l, read(j));
  if (j.contains("polyp_count") && j["polyp_count"].contains("exact"))
    l.count_exact = j["polyp_count"]["exact"].get<bool>();
  if (j.contains("polyps")) {
    ENDOKED_CHECK(j["polyps"].is_array(), "labels: 'polyps' must be an array");
    for (const auto& pj : j["polyps"]) {
      ENDOKED_CHECK(pj.is_object(), "labels: 'polyps[]' must hold objects");
      PolypLabel p;
      visit_fields(p, read(pj));
      p.quantity = pj.value("quantity", 1);
      if (pj.contains("evidence")) p.evidence = spans_from(pj["evidence"], "polyps[].evidence");
      l.polyps.push_back(std::move(p));
    }
  }
  if (j.contains("notes"))
    for (const auto& n : j["notes"]) l.notes.push_back(n.get<std::string>());
  return l;
}

}  // namespace endoked::report
