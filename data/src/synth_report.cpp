// Findings and report text of synthetic exams. Every sentence is built from the drawn findings,
// and the truth records exactly what the text states.
#include <fmt/format.h>

#include <array>
#include <cmath>

#include "endoked/core/error.h"
#include "endoked/core/seed.h"
#include "endoked/data/synth.h"

using nlohmann::json;

namespace endoked::data {
namespace {

struct Segment {
  const char* key;
  std::vector<const char*> en;  // full names and abbreviations
  const char* zh;
};

const std::vector<Segment>& segments() {
  static const std::vector<Segment> s = {
      {"caecum", {"caecum", "cecum"}, "盲肠"},
      {"ascending", {"ascending colon", "asc colon", "ascending colon"}, "升结肠"},
      {"hepatic_flexure", {"hepatic flexure", "hepatic flexure"}, "肝曲"},
      {"transverse", {"transverse colon", "trans colon", "transverse colon"}, "横结肠"},
      {"splenic_flexure", {"splenic flexure", "splenic flexure"}, "脾曲"},
      {"descending", {"descending colon", "desc colon", "descending colon"}, "降结肠"},
      {"sigmoid", {"sigmoid colon", "sigmoid", "sig colon"}, "乙状结肠"},
      {"rectum", {"rectum", "rectum"}, "直肠"},
  };
  return s;
}

template <typename T>
const T& pick(Rng& r, const std::vector<T>& v) {
  return v[static_cast<std::size_t>(r.randint(0, static_cast<std::int64_t>(v.size()) - 1))];
}

const char* en_number(int n) {
  static const char* k[] = {"zero", "one", "two", "three", "four", "five", "six"};
  return n >= 0 && n <= 6 ? k[n] : "several";
}
const char* zh_number(int n) {
  static const char* k[] = {"零", "一", "两", "三", "四", "五", "六"};
  return n >= 0 && n <= 6 ? k[n] : "多";
}
std::string capitalise(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

SynthPolyp draw_polyp(Rng& r, bool faint) {
  SynthPolyp p;
  p.segment = segments()[r.categorical({0.08, 0.14, 0.06, 0.16, 0.05, 0.1, 0.26, 0.15})].key;
  const double u = r.uniform();
  p.pathology = u < 0.33 ? "hyperplastic" : (u < 0.85 ? "adenoma" : "cancer");
  if (faint) p.pathology = "hyperplastic";
  // Sizes: mostly diminutive/small; cancers large.
  if (p.pathology == "cancer") {
    p.size_mm = std::round(r.uniform(15, 40));
  } else {
    p.size_mm = std::round(std::exp(r.normal(std::log(6.0), 0.55)));
    p.size_mm = std::min(35.0, std::max(2.0, p.size_mm));
  }
  if (faint) p.size_mm = std::round(r.uniform(2, 5));
  const std::size_t m = faint                     ? 2
                        : p.pathology == "cancer" ? r.categorical({0.0, 0.75, 0.25})
                                                  : r.categorical({0.2, 0.55, 0.25});
  static const char* kMorph[] = {"pedunculated", "sessile", "flat"};
  static const char* kParis[] = {"0-Ip", "0-Is", "0-IIa"};
  p.morphology = kMorph[m];
  p.paris = kParis[m];
  if (p.pathology == "hyperplastic") {
    p.histology = "hyperplastic_polyp";
  } else if (p.pathology == "adenoma") {
    const std::size_t h = r.categorical({0.7, 0.15, 0.05, 0.1});
    static const char* kHist[] = {"tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma",
                                  "sessile_serrated_lesion"};
    p.histology = kHist[h];
    if (h < 3) p.dysplasia = r.bernoulli(p.size_mm >= 10 ? 0.3 : 0.08) ? "high" : "low";
  } else {
    p.histology = "adenocarcinoma";
  }
  if (p.pathology == "cancer") {
    p.removal = r.bernoulli(0.85) ? "biopsy" : "not_removed";
  } else if (p.size_mm >= 20) {
    p.removal = r.bernoulli(0.7) ? "emr" : "hot_snare";
  } else {
    p.removal = pick(r, std::vector<std::string>{"cold_snare", "cold_snare", "hot_snare", "emr",
                                                 "biopsy", "not_removed"});
  }
  p.pathology_reported = p.removal != "not_removed" && r.bernoulli(0.75);
  p.appearance_seed = r.next();
  return p;
}

// ---- English ----

std::string en_size(Rng& r, double mm) {
  const double v = r.uniform();
  if (mm >= 10 && v < 0.5) return fmt::format("{:.1f} cm", mm / 10.0);
  if (mm <= 5 && v < 0.15) return "diminutive";
  if (v < 0.1) return fmt::format("{:.0f}mm", mm);
  return fmt::format("{:.0f} mm", mm);
}
std::string en_morph(Rng& r, const SynthPolyp& p) {
  if (p.morphology == "pedunculated")
    return pick(r,
                std::vector<std::string>{"pedunculated", "pedunculated (Paris 0-Ip)", "stalked"});
  if (p.morphology == "sessile")
    return pick(r, std::vector<std::string>{"sessile", "sessile (Paris 0-Is)", "broad-based"});
  return pick(r, std::vector<std::string>{"flat", "flat elevated (Paris 0-IIa)", "flat"});
}
std::string en_removal(Rng& r, const std::string& removal) {
  if (removal == "cold_snare")
    return pick(r, std::vector<std::string>{"It was removed by cold snare polypectomy.",
                                            "Cold snare polypectomy was performed.",
                                            "Removed with cold snare; retrieved."});
  if (removal == "hot_snare")
    return pick(r, std::vector<std::string>{"It was removed by hot snare polypectomy.",
                                            "Hot snare polypectomy performed; retrieved."});
  if (removal == "emr")
    return pick(r,
                std::vector<std::string>{"EMR was performed after submucosal lifting.",
                                         "It was resected by endoscopic mucosal resection (EMR)."});
  if (removal == "biopsy")
    return pick(r, std::vector<std::string>{"Biopsies were taken.", "Cold forceps biopsy taken."});
  return pick(r, std::vector<std::string>{"It was not removed.",
                                          "Not removed; referral for endoscopic resection."});
}
std::string en_histology(Rng& r, const SynthPolyp& p) {
  const std::string dys = p.dysplasia == "high" ? "high-grade dysplasia" : "low-grade dysplasia";
  if (p.histology == "hyperplastic_polyp")
    return pick(r, std::vector<std::string>{"hyperplastic polyp", "hyperplastic polyp (HP)"});
  if (p.histology == "tubular_adenoma")
    return pick(r, std::vector<std::string>{"tubular adenoma with " + dys, "TA, " + dys});
  if (p.histology == "tubulovillous_adenoma") return "tubulovillous adenoma with " + dys;
  if (p.histology == "villous_adenoma") return "villous adenoma with " + dys;
  if (p.histology == "sessile_serrated_lesion")
    return pick(r, std::vector<std::string>{"sessile serrated lesion without dysplasia",
                                            "sessile serrated adenoma/polyp"});
  return pick(r, std::vector<std::string>{"invasive adenocarcinoma",
                                          "moderately differentiated adenocarcinoma"});
}

// One word in `rate` gets a swapped pair of letters; only long alphabetic words.
std::string add_typos(Rng& r, const std::string& text, double rate) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) {
      std::string word = text.substr(i, j - i);
      if (word.size() >= 6 && r.bernoulli(rate)) {
        const std::size_t k =
            static_cast<std::size_t>(r.randint(1, static_cast<std::int64_t>(word.size()) - 3));
        std::swap(word[k], word[k + 1]);
      }
      out += word;
      i = j;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// What a report says beyond the drawn findings, for the truth: a group of diminutive rectal
// polyps left in place ("several …": an at-least count).
struct ReportExtras {
  bool vague_group = false;
};

// "8 cm from the anal verge" / "at 25 cm": a distance, never a size.
int distance_cm(Rng& r, const std::string& segment) {
  return segment == "rectum" ? static_cast<int>(r.randint(3, 14))
                             : static_cast<int>(r.randint(15, 40));
}

std::string en_report(Rng& r, const SynthExam& e, const SynthOptions& opt, ReportExtras& x) {
  std::string s;
  const bool header_caps = r.bernoulli(0.5);
  std::string indication =
      e.history_of_polypectomy
          ? pick(r,
                 std::vector<std::string>{
                     "Surveillance; history of polypectomy.",
                     "Surveillance colonoscopy, previous polypectomy 3 years ago.",
                     "Hx of adenomatous polyps s/p polypectomy."})
          : pick(r, std::vector<std::string>{"Screening.", "Positive FIT.", "Rectal bleeding.",
                                             "Change in bowel habit.", "Iron deficiency anaemia.",
                                             "Family history of colorectal cancer."});
  s += (header_caps ? "INDICATION: " : "Indication: ") + indication + "\n";
  const std::string prep = e.bowel_prep;
  s += (header_caps ? "PREPARATION: " : "Bowel preparation: ") + capitalise(prep) +
       (r.bernoulli(0.5) ? "."
                         : fmt::format(" (BBPS {}).", prep == "excellent" ? 9
                                                      : prep == "good"    ? 7
                                                      : prep == "fair"    ? 5
                                                                          : 3)) +
       "\n";
  s += header_caps ? "FINDINGS: " : "Findings: ";
  s += e.caecum_reached ? pick(r,
                               std::vector<std::string>{
                                   "The scope was advanced to the caecum. ",
                                   "Caecal intubation achieved; appendiceal orifice and ileocaecal "
                                   "valve identified. ",
                                   "The colonoscope was passed to the cecum without difficulty. "})
                        : pick(r, std::vector<std::string>{
                                      "The caecum could not be reached due to a tight sigmoid. ",
                                      "Incomplete examination to the hepatic flexure. "});
  // Surveillance: the old polypectomy scar is clean (never a finding of this exam).
  if (e.history_of_polypectomy && r.bernoulli(0.5))
    s +=
        pick(r, std::vector<std::string>{
                    "Polypectomy scar in the sigmoid colon with no residual or recurrent adenoma. ",
                    "The previous EMR site in the ascending colon was identified: clean scar, no "
                    "recurrence. "});
  if (e.status == "negative") {
    s += pick(
        r, std::vector<std::string>{"No polyps were found. ", "No polyps or masses were seen. ",
                                    "The colonic mucosa appeared normal throughout; no polyps. ",
                                    "There was no evidence of polyps or tumour. ",
                                    "No masses, polyps or AVMs. ", "Normal mucosa throughout. "});
    // Diverticula are never polyps, even counted and sized.
    if (r.bernoulli(0.4))
      s += pick(r, std::vector<std::string>{
                       "Scattered diverticula in the sigmoid colon. ",
                       "Three diverticula in the sigmoid colon, the largest 6 mm. ",
                       "Multiple diverticula in the descending and sigmoid colon. "});
  } else if (e.status == "uncertain") {
    const auto& seg = segments();
    const std::string where = e.polyps.empty() ? pick(r, seg).en[0] : [&] {
      for (const auto& sg : seg)
        if (e.polyps[0].segment == sg.key) return std::string(sg.en[0]);
      return std::string("colon");
    }();
    s += pick(r, std::vector<std::string>{
                     "A possible small polyp was seen in the " + where +
                         ", not confirmed on re-inspection. ",
                     "Questionable flat lesion in the " + where + "; cannot exclude a polyp. ",
                     "Possible diminutive polyp in the " + where + " versus a mucosal fold. ",
                     "Equivocal 3 mm lesion in the " + where + ", polyp versus prominent fold. "});
  } else {
    const int n = static_cast<int>(e.polyps.size());
    if (n > 1 && r.bernoulli(0.5))
      s += capitalise(en_number(n)) + std::string(" polyps were found. ");
    for (int i = 0; i < n; ++i) {
      const SynthPolyp& p = e.polyps[static_cast<std::size_t>(i)];
      std::string seg;
      for (const auto& sg : segments())
        if (p.segment == sg.key)
          seg = pick(r, std::vector<std::string>(sg.en.begin(), sg.en.end()));
      if ((p.segment == "rectum" || p.segment == "sigmoid") && r.bernoulli(0.4))
        seg += r.bernoulli(0.5)
                   ? fmt::format(" at {} cm", distance_cm(r, p.segment))
                   : fmt::format(", {} cm from the anal verge,", distance_cm(r, p.segment));
      const std::string size = en_size(r, p.size_mm);
      const std::string morph = en_morph(r, p);
      const std::string article =
          (size[0] == '8' || size.rfind("11", 0) == 0 || size.rfind("18", 0) == 0) ? "An" : "A";
      switch (r.randint(0, 2)) {
        case 0:
          s += fmt::format("{} {} {} polyp was found in the {}. ", article, size, morph, seg);
          break;
        case 1:
          s += fmt::format("In the {} there was a {} {} polyp. ", seg, morph, size);
          break;
        default:
          s += fmt::format("{} polyp, {}, in the {}. ", capitalise(morph), size, seg);
          break;
      }
      s += en_removal(r, p.removal) + " ";
    }
    x.vague_group = r.bernoulli(0.12);
    if (x.vague_group)
      s += pick(r, std::vector<std::string>{
                       "Several diminutive polyps were also seen in the rectum and left in place. ",
                       "Multiple tiny polyps in the rectum, not removed. "});
    s += pick(r, std::vector<std::string>{"No other polyps were seen. ", "No further lesions. ",
                                          "The remaining colon was normal. ",
                                          "Otherwise normal mucosa; no diverticula. "});
  }
  s += pick(r, std::vector<std::string>{"Retroflexion in the rectum was normal.",
                                        "Small internal haemorrhoids.", "Normal terminal ileum."});
  s += "\n";
  s += header_caps ? "IMPRESSION: " : "Impression: ";
  if (e.status == "positive") {
    const int n = static_cast<int>(e.polyps.size());
    s += x.vague_group ? "Multiple colonic polyps"
         : n == 1      ? "Colonic polyp"
                       : fmt::format("{} colonic polyps", capitalise(en_number(n)));
    s += " as above.";
  } else if (e.status == "uncertain") {
    s += "Possible small polyp; repeat examination advised.";
  } else {
    s += pick(r, std::vector<std::string>{"Normal colonoscopy.", "No polyps.",
                                          "No evidence of neoplasia."});
  }
  s += "\n";
  bool any = false;
  for (const auto& p : e.polyps) any = any || (e.status == "positive" && p.pathology_reported);
  if (any) {
    s += header_caps ? "PATHOLOGY: " : "Pathology: ";
    int k = 0;
    for (const auto& p : e.polyps) {
      ++k;
      if (!p.pathology_reported) continue;
      std::string seg;
      for (const auto& sg : segments())
        if (p.segment == sg.key) seg = sg.en[0];
      s += fmt::format("({}) {}: {}. ", k, capitalise(seg), en_histology(r, p));
    }
    s += "\n";
  }
  return add_typos(r, s, opt.typo_rate);
}

// ---- Chinese ----

std::string zh_report(Rng& r, const SynthExam& e, ReportExtras& x) {
  std::string s = "检查所见：";
  s += e.caecum_reached ? pick(r, std::vector<std::string>{"进镜至回盲部，",
                                                           "循腔进镜至盲肠，见阑尾开口及回盲瓣，"})
                        : "因肠腔狭窄未能到达回盲部，";
  const std::string prep = e.bowel_prep == "excellent" ? "优"
                           : e.bowel_prep == "good"    ? "良好"
                           : e.bowel_prep == "fair"    ? "一般"
                                                       : "差";
  s += "肠道准备" + prep + "。";
  auto zh_seg = [&](const std::string& key) {
    for (const auto& sg : segments())
      if (key == sg.key) return std::string(sg.zh);
    return std::string("结肠");
  };
  if (e.history_of_polypectomy) {
    s += pick(r, std::vector<std::string>{"既往结肠息肉切除术后。", "有结肠息肉切除史。"});
    if (r.bernoulli(0.5)) s += "原息肉切除处见瘢痕，未见复发。";
  }
  if (e.status == "negative") {
    s += pick(r, std::vector<std::string>{
                     "全结肠黏膜光滑，未见息肉及新生物。", "所见结直肠未见息肉。",
                     "结肠黏膜未见明显异常，未见息肉。", "未见糜烂、溃疡、息肉及新生物。"});
    if (r.bernoulli(0.3))
      s += pick(
          r, std::vector<std::string>{"乙状结肠见多发憩室，最大约0.5cm。", "乙状结肠见三个憩室。"});
  } else if (e.status == "uncertain") {
    const std::string seg = e.polyps.empty() ? "乙状结肠" : zh_seg(e.polyps[0].segment);
    s += pick(r, std::vector<std::string>{seg + "可疑小息肉，复查未能确认。",
                                          seg + "见一处可疑隆起，息肉待排。",
                                          seg + "见一处黏膜隆起，约0.3cm，息肉不能除外。"});
  } else {
    const int n = static_cast<int>(e.polyps.size());
    if (n > 1 && r.bernoulli(0.5)) s += fmt::format("共见息肉{}枚。", zh_number(n));
    for (const auto& p : e.polyps) {
      const std::string size = p.size_mm >= 10 || r.bernoulli(0.5)
                                   ? fmt::format("{:.1f}cm", p.size_mm / 10.0)
                                   : fmt::format("{:.0f}mm", p.size_mm);
      const std::string morph = p.morphology == "pedunculated" ? "带蒂"
                                : p.morphology == "sessile"    ? "广基"
                                                               : "扁平";
      const std::string surface = p.pathology == "cancer"    ? "表面糜烂、质脆"
                                  : p.pathology == "adenoma" ? "表面充血、分叶状"
                                                             : "表面光滑";
      const std::string where =
          (p.segment == "rectum" || p.segment == "sigmoid") && r.bernoulli(0.4)
              ? fmt::format("{}距肛门{}cm处", zh_seg(p.segment), distance_cm(r, p.segment))
              : zh_seg(p.segment);
      s += fmt::format("{}见一枚大小约{}的{}息肉，{}，", where, size, morph, surface);
      s += p.removal == "cold_snare"  ? "予冷圈套器切除。"
           : p.removal == "hot_snare" ? "予热圈套器切除。"
           : p.removal == "emr"       ? "予内镜下黏膜切除术（EMR）。"
           : p.removal == "biopsy"    ? "取活检。"
                                      : "未予处理。";
    }
    x.vague_group = r.bernoulli(0.12);
    if (x.vague_group) s += "直肠另见数枚微小息肉，未予处理。";
    s += pick(r, std::vector<std::string>{"其余结肠未见息肉。", "余所见肠段未见明显异常。"});
  }
  s += "\n结论：";
  if (e.status == "positive") {
    s += x.vague_group ? "结肠多发息肉"
         : e.polyps.size() == 1
             ? "结肠息肉"
             : fmt::format("结肠多发息肉（{}枚）", zh_number(static_cast<int>(e.polyps.size())));
  } else if (e.status == "uncertain") {
    s += "可疑结肠小息肉，建议复查";
  } else {
    s += pick(r, std::vector<std::string>{"结肠镜检查未见异常", "未见息肉"});
  }
  s += "。\n";
  bool any = false;
  for (const auto& p : e.polyps) any = any || (e.status == "positive" && p.pathology_reported);
  if (any) {
    s += "病理：";
    for (const auto& p : e.polyps) {
      if (!p.pathology_reported) continue;
      std::string h;
      const std::string dys = p.dysplasia == "high" ? "高级别上皮内瘤变" : "低级别上皮内瘤变";
      if (p.histology == "hyperplastic_polyp")
        h = "增生性息肉";
      else if (p.histology == "tubular_adenoma")
        h = "管状腺瘤伴" + dys;
      else if (p.histology == "tubulovillous_adenoma")
        h = "管状绒毛状腺瘤伴" + dys;
      else if (p.histology == "villous_adenoma")
        h = "绒毛状腺瘤伴" + dys;
      else if (p.histology == "sessile_serrated_lesion")
        h = "无蒂锯齿状病变";
      else
        h = "腺癌";
      s += zh_seg(p.segment) + "：" + h + "；";
    }
    s += "\n";
  }
  return s;
}

}  // namespace

SynthExam synth_exam(const SynthOptions& opt, std::int64_t index) {
  ENDOKED_CHECK(opt.min_images >= 2 && opt.max_images >= opt.min_images,
                "synth.min_images must be ≥ 2 and ≤ synth.max_images");
  Rng r(opt.seed, "synth.exam", static_cast<std::uint64_t>(index));
  SynthExam e;
  e.index = index;
  e.id = fmt::format("{}{:07d}", opt.id_prefix, index);
  e.language = r.bernoulli(opt.chinese_fraction) ? "zh" : "en";
  const double u = r.uniform();
  if (u < opt.negative_fraction) {
    e.status = "negative";
  } else if (u < opt.negative_fraction + opt.uncertain_fraction) {
    e.status = "uncertain";
    if (r.bernoulli(0.5)) e.polyps.push_back(draw_polyp(r, true));
  } else {
    e.status = "positive";
    const int n = 1 + static_cast<int>(r.categorical({0.6, 0.25, 0.1, 0.05}));
    for (int i = 0; i < n; ++i) e.polyps.push_back(draw_polyp(r, false));
  }
  e.history_of_polypectomy = r.bernoulli(0.15);
  e.bowel_prep = std::vector<std::string>{"excellent", "good", "good", "fair",
                                          "poor"}[r.categorical({0.2, 0.3, 0.2, 0.2, 0.1})];
  e.caecum_reached = r.bernoulli(0.93);
  const int needed = [&] {
    int k = 0;
    for (std::size_t i = 0; i < e.polyps.size(); ++i) k += 2;
    return k;
  }();
  e.image_count = static_cast<int>(
      std::max<std::int64_t>(r.randint(opt.min_images, opt.max_images), needed + 1));
  ReportExtras extras;
  e.report = e.language == "zh" ? zh_report(r, e, extras) : en_report(r, e, opt, extras);

  json polyps = json::array();
  if (e.status == "positive") {
    for (const auto& p : e.polyps) {
      const std::string group = p.pathology == "hyperplastic" ? "non_neoplastic" : p.pathology;
      polyps.push_back(
          {{"segment", p.segment},
           {"size_mm", p.size_mm},
           {"morphology", p.morphology},
           {"paris", p.paris},
           {"removal", p.removal},
           {"removed", p.removal != "biopsy" && p.removal != "not_removed"},
           {"pathology", p.pathology_reported ? json(p.histology) : json(nullptr)},
           {"dysplasia",
            p.pathology_reported && !p.dysplasia.empty() ? json(p.dysplasia) : json(nullptr)},
           {"pathology_group", p.pathology_reported ? json(group) : json(nullptr)}});
    }
  }
  if (e.status == "positive" && extras.vague_group)
    polyps.push_back({{"segment", "rectum"},
                      {"size_mm", nullptr},
                      {"quantity", -1},
                      {"removal", "not_removed"},
                      {"removed", false},
                      {"pathology", nullptr},
                      {"pathology_group", nullptr}});
  // None seen through a poor preparation or short of the caecum is not assessable
  // (recipes/label/GUIDELINE.md 4): the report's truth is uncertain, the images stay negative.
  const bool unassessable = e.status == "negative" && (e.bowel_prep == "poor" || !e.caecum_reached);
  const std::string presence = unassessable ? "uncertain" : e.status;
  e.report_truth = {
      {"polyp_present", presence},
      {"polyp_count", e.status == "positive"
                          ? (extras.vague_group ? json(std::to_string(e.polyps.size() + 2) + "+")
                                                : json(static_cast<int>(e.polyps.size())))
                      : unassessable ? json(nullptr)
                                     : json(0)},
      {"polyps", polyps},
      {"history_of_polypectomy", e.history_of_polypectomy},
      {"bowel_prep", e.bowel_prep},
      {"caecum_reached", e.caecum_reached},
      {"language", e.language}};
  return e;
}

}  // namespace endoked::data
