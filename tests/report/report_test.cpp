// The rules labeller on synthetic English and Chinese reports (truth from the generator), on
// hand-written hard cases, and its lexicon loading.
#include <gtest/gtest.h>

#include <fstream>

#include "../common/test_util.h"

#include "endoked/core/error.h"
#include "endoked/report/eval.h"
#include "endoked/report/rules.h"
#include "endoked/data/synth.h"
#include "endoked/report/lexicons.h"

namespace endoked::report {
namespace {

const RulesLabeller& labeller() {
  static const RulesLabeller r(load_lexicons());
  return r;
}

LabelEvaluator evaluate_synthetic(double chinese_fraction, std::int64_t exams, std::uint64_t seed) {
  data::SynthOptions o;
  o.seed = seed;
  o.chinese_fraction = chinese_fraction;
  o.uncertain_fraction = 0.08;
  LabelEvaluator ev;
  for (std::int64_t i = 0; i < exams; ++i) {
    const auto e = data::synth_exam(o, i);
    ev.add(e.id, labeller().label(e.report), e.report_truth, e.report);
  }
  return ev;
}

void print_errors(const LabelEvaluator& ev, std::size_t n) {
  for (std::size_t i = 0; i < std::min(n, ev.errors().size()); ++i)
    std::cout << ev.errors()[i].dump() << "\n";
}

// Thresholds for both languages: presence F1 and accuracy ≥ 0.98, per-polyp fields ≥ 0.95–0.97
// (the Chinese pathology lines name only a segment, so two polyps in one segment can swap).
void expect_accurate(const LabelEvaluator& ev) {
  print_errors(ev, 15);
  EXPECT_GE(ev.positive_f1(), 0.98);
  EXPECT_GE(ev.accuracy("polyp_present"), 0.98);
  EXPECT_GE(ev.accuracy("polyp_count"), 0.97);
  EXPECT_GE(ev.accuracy("polyp.segment"), 0.97);
  EXPECT_GE(ev.accuracy("polyp.size"), 0.97);
  EXPECT_GE(ev.accuracy("polyp.morphology"), 0.95);
  EXPECT_GE(ev.accuracy("polyp.removal"), 0.95);
  EXPECT_GE(ev.accuracy("polyp.histology"), 0.95);
  EXPECT_GE(ev.accuracy("history_of_polypectomy"), 0.97);
  EXPECT_GE(ev.accuracy("bowel_prep"), 0.97);
  EXPECT_GE(ev.accuracy("caecum_reached"), 0.97);
  EXPECT_GT(ev.scored("polyp.size"), 500);
}

TEST(ReportRules, SyntheticEnglish) {
  expect_accurate(evaluate_synthetic(0.0, 1500, 11));
}

TEST(ReportRules, SyntheticChinese) {
  expect_accurate(evaluate_synthetic(1.0, 1500, 12));
}

TEST(ReportRules, HandWrittenCases) {
  const auto l = labeller().label(
      "FINDINGS:\nThere was a 2 mm polyp in the cecum removed completely/retrieved with cold "
      "forceps "
      "polypectomy.\nThere were two 5 mm polyps in the ascending colon removed "
      "completely/retrieved "
      "with cold snare polypectomy.\nThere was a 1.5 cm flat polyp (Paris classification IIb) in "
      "the transverse colon.\nThe quality of the preparation was fair.\n");
  ASSERT_EQ(l.polyp_present.value.value_or(""), "positive");
  ASSERT_EQ(l.polyps.size(), 3u);
  EXPECT_EQ(*l.polyps[0].segment.value, "caecum");
  EXPECT_DOUBLE_EQ(*l.polyps[0].size_mm.value, 2.0);
  EXPECT_EQ(*l.polyps[0].removal.value, "forceps");  // cold forceps polypectomy
  EXPECT_EQ(l.polyps[1].quantity, 2);
  EXPECT_EQ(*l.polyps[1].segment.value, "ascending");
  EXPECT_EQ(*l.polyps[1].removal.value, "cold_snare");
  EXPECT_DOUBLE_EQ(*l.polyps[2].size_mm.value, 15.0);
  EXPECT_EQ(*l.polyps[2].morphology.value, "flat");
  EXPECT_EQ(*l.polyps[2].paris.value, "0-IIb");
  EXPECT_EQ(*l.polyp_count.value, 4);
  EXPECT_TRUE(l.count_exact);
  EXPECT_EQ(*l.bowel_prep.value, "fair");

  // A pathology entry wrapped over two lines keeps its site.
  const auto path = labeller().label(
      "FINAL DIAGNOSIS:\nC.  SIGMOID COLON, POLYP (BIOPSY):  -\n Tubular adenoma  - No high-grade "
      "dysplasia\nD.  RECTUM, POLYP (SNARED):  - Tubulovillous adenoma\n");
  ASSERT_EQ(path.polyps.size(), 2u);
  EXPECT_EQ(*path.polyps[0].segment.value, "sigmoid");
  EXPECT_EQ(*path.polyps[0].histology.value, "tubular_adenoma");
  EXPECT_FALSE(path.polyps[0].dysplasia.value.has_value());  // "No high-grade dysplasia"
  EXPECT_EQ(*path.polyps[1].segment.value, "rectum");
  EXPECT_EQ(*path.polyps[1].histology.value, "tubulovillous_adenoma");

  // History and family mentions are not current polyps; negation and hedging are scoped.
  const auto h = labeller().label(
      "Indication: history of polypectomy; family history of colon cancer.\n"
      "Findings: No polyps or masses were seen. The cecum could not be reached.\n");
  EXPECT_EQ(*h.polyp_present.value, "uncertain");  // none seen short of the caecum (GUIDELINE 4)
  EXPECT_TRUE(*h.history_of_polypectomy.value);
  EXPECT_FALSE(*h.caecum_reached.value);
  EXPECT_EQ(*labeller()
                 .label("Findings: Questionable flat lesion in the rectum; cannot exclude a polyp.")
                 .polyp_present.value,
            "uncertain");
  EXPECT_EQ(*labeller()
                 .label("Findings: The colonoscope was passed without difficulty.")
                 .polyp_present.value,
            "not_mentioned");
  EXPECT_EQ(*labeller()
                 .label("Findings: Scattered polyps (<1CM) seen and not removed.")
                 .polyp_present.value,
            "positive");
  const auto many = labeller().label("Findings: Multiple diminutive polyps throughout the colon.");
  EXPECT_FALSE(many.count_exact);
  EXPECT_EQ(*many.polyp_count.value, 2);  // "at least 2"
  // Chinese: negation, hedging, count statement, history.
  const auto zh = labeller().label(
      "检查所见：既往结肠息肉切除术后。乙状结肠见两枚大小约0."
      "5cm的广基息肉，予冷圈套器切除。\n结论：结肠多发息肉（两枚）。");
  EXPECT_EQ(zh.language, "zh");
  EXPECT_EQ(*zh.polyp_present.value, "positive");
  EXPECT_TRUE(*zh.history_of_polypectomy.value);
  EXPECT_EQ(*zh.polyp_count.value, 2);
  ASSERT_EQ(zh.polyps.size(), 1u);
  EXPECT_EQ(zh.polyps[0].quantity, 2);
  EXPECT_DOUBLE_EQ(*zh.polyps[0].size_mm.value, 5.0);
  EXPECT_EQ(*labeller().label("检查所见：全结肠黏膜光滑，未见息肉及新生物。").polyp_present.value,
            "negative");
  EXPECT_EQ(*labeller().label("检查所见：横结肠见一处可疑隆起，息肉待排。").polyp_present.value,
            "uncertain");
}

// Phrasings found on fresh hand-written reports (tests/data/reports/en_j, zh_i).
TEST(ReportRules, ArchivesOfManyHospitals) {
  // A header closed by a long qualifier; "L2:" lesion labels; a block field whose value names
  // the lesion; copied-forward history between asterisks.
  const auto late = labeller().label(
      "LESIONS\nNo. | Site | Size | Removal\nL1 | Sigmoid colon | 4mm | Cold snare\n"
      "L2 | Sigmoid colon | 5mm | Cold snare\nHISTOLOGY (reported 22/03/2024, added to report "
      "04/03/2024 - RA)\nL2: Tubular adenoma with low grade dysplasia.");
  ASSERT_EQ(late.polyps.size(), 2u);
  EXPECT_FALSE(late.polyps[0].group.value.has_value());
  EXPECT_EQ(late.polyps[1].group.value.value_or(""), "adenoma");
  const auto block = labeller().label(
      "FINDINGS\nPolyp 1\n  Site: Transverse colon\n  Size: 35 mm\n  Morphology (Paris): "
      "0-IIa+IIc, LST-NG pseudo-depressed\n  Removal: ESD, en bloc.");
  ASSERT_EQ(block.polyps.size(), 1u);
  EXPECT_EQ(block.polyps[0].removal.value.value_or(""), "esd");
  EXPECT_EQ(*labeller()
                 .label("*** GI HX (copied forward from 03/2021 procedure note) ***\n- 03/2021 "
                        "colonoscopy: 4 TA (3-6 mm) removed\n*** ***\nFINDINGS:\n1) Proximal "
                        "colon could not be adequately assessed.\n2) No polyps seen in the "
                        "adequately visualized left colon.")
                 .polyp_present.value,
            "uncertain");
  // A correction of specimen 2 goes where specimen 2's first result went (specimen 1 was gastric).
  const auto revised = labeller().label(
      "肠镜所见：降结肠见一枚约8mm亚蒂息肉，予热圈套切除；乙状结肠见3枚2-4mm息肉，予冷钳钳除。\n"
      "病理诊断：\n标本1（胃体）胃底腺息肉。\n标本2（降结肠）增生性息肉。\n标本3（乙状结肠）管状腺"
      "瘤。\n"
      "补充报告：标本2经科内会诊修正诊断为无蒂锯齿状病变（SSL）。");
  ASSERT_EQ(revised.polyps.size(), 2u);
  EXPECT_EQ(revised.polyps[0].histology.value.value_or(""), "sessile_serrated_lesion");
  // Software boilerplate ("blood pressure"), a normal examined colon, an item that is a
  // diverticulosis, a bracketed count after "Multiple", a planned removal, 末见 for 未见.
  EXPECT_EQ(*labeller()
                 .label("Procedure: the patient's blood pressure, pulse, and oxygen saturations "
                        "were monitored.\nFindings:\n     The entire examined colon appeared "
                        "normal on direct and retroflexion views.")
                 .polyp_present.value,
            "negative");
  EXPECT_EQ(*labeller()
                 .label("Findings:\n- Ascending colon: 22 mm pedunculated polyp; removed by hot "
                        "snare.\n- Left colon: moderate diverticulosis.")
                 .polyp_count.value,
            1);
  EXPECT_EQ(*labeller()
                 .label("FINDINGS:\n- Multiple (4) sessile polyps were found in the ascending "
                        "colon.")
                 .polyp_count.value,
            4);
  const auto planned = labeller().label(
      "检查所见：回盲瓣见一广基息肉样隆起，大小约1.5cm，活检3块，拟择期行EMR/ESD。");
  ASSERT_EQ(planned.polyps.size(), 1u);
  EXPECT_FALSE(removed_today(planned.polyps[0].removal.value));
  EXPECT_EQ(*labeller().label("所见:全结肠粘膜光滑,末见溃疡,息肉及肿物.").polyp_present.value,
            "negative");
  // Other organs' polyps, the original polyp's site, a queried lesion in a bilingual report.
  EXPECT_EQ(
      *labeller()
           .label(
               "[结肠镜] 所见：所见结直肠黏膜未见明显异常。\n[腹部超声] 胆囊息肉样病变（0.3cm）。")
           .polyp_present.value,
      "negative");
  EXPECT_EQ(
      *labeller()
           .label("手术经过：反复寻找原息肉部位，横结肠仅见一处约0.3cm活检后瘢痕，未见残留腺瘤。")
           .polyp_present.value,
      "negative");
  EXPECT_EQ(*labeller()
                 .label("Findings 所見:\nHepatic flexure: ?4mm polyp vs mucosal fold, could not be "
                        "relocated on withdrawal. 肝曲懷疑細小息肉，未能再次找到。")
                 .polyp_present.value,
            "uncertain");
}

TEST(ReportRules, ScatteredPerPolypDetail) {
  // A removal told for all of them, in the next sentence or the impression.
  const auto each = labeller().label(
      "Findings: Four polyps were seen: caecum 3 mm, ascending colon 4 mm, transverse colon 6 mm, "
      "and descending colon 5 mm. Each was removed by cold snare and retrieved separately.");
  ASSERT_EQ(each.polyps.size(), 4u);
  for (const auto& p : each.polyps) EXPECT_EQ(p.removal.value.value_or(""), "cold_snare");
  const auto told = labeller().label(
      "Findings:\n1. Cecum: 6 mm sessile polyp.\n2. Sigmoid colon, 25 cm: 9 mm polyp.\n"
      "Impression:\nTwo polyps removed by snare polypectomy.");
  ASSERT_EQ(told.polyps.size(), 2u);
  for (const auto& p : told.polyps) EXPECT_TRUE(removed_today(p.removal.value));
  const auto zh = labeller().label(
      "所见：升结肠见一枚0.3cm息肉。横结肠见一枚0.5cm息肉。以上息肉均予冷圈套切除。");
  ASSERT_EQ(zh.polyps.size(), 2u);
  EXPECT_EQ(zh.polyps[0].removal.value.value_or(""), "cold_snare");
  // "a 4 mm and a 6 mm polyp" are two; 各見 … 分别 pairs sizes in order; sizes of the impression.
  const auto pair = labeller().label(
      "Findings:\nAsc colon: a 4 mm and a 6 mm polyp, both removed with cold snare.");
  ASSERT_EQ(pair.polyps.size(), 2u);
  EXPECT_DOUBLE_EQ(*pair.polyps[0].size_mm.value, 4.0);
  EXPECT_DOUBLE_EQ(*pair.polyps[1].size_mm.value, 6.0);
  const auto respectively = labeller().label(
      "检查所见：橫結腸、乙狀結腸各見一枚息肉，大小分別約0.4cm及0.8cm，均予冷圈套切除。");
  ASSERT_EQ(respectively.polyps.size(), 2u);
  EXPECT_DOUBLE_EQ(*respectively.polyps[1].size_mm.value, 8.0);
  const auto impression = labeller().label(
      "所见：升结肠及乙状结肠各见息肉一颗，均予钳除。\n诊断：升结肠息肉（0.4cm）、乙状结肠息肉（0."
      "7cm）");
  ASSERT_EQ(impression.polyps.size(), 2u);
  EXPECT_DOUBLE_EQ(*impression.polyps[1].size_mm.value, 7.0);
  // A lesion named by no polyp word lends its size to the polyp its histology brings.
  const auto unnamed = labeller().label(
      "镜下所见：乙状结肠距肛门约30cm见一处约0.6cm黏膜粗糙、发红，取活检2块。\n"
      "病理诊断：（乙状结肠活检）管状腺瘤，低级别上皮内瘤变。");
  ASSERT_EQ(unnamed.polyps.size(), 1u);
  EXPECT_DOUBLE_EQ(*unnamed.polyps[0].size_mm.value, 6.0);
  // Sizes in words; a stalk's thickness is no size; "the known LST" removed today is today's.
  for (const auto& [text, mm] : std::vector<std::pair<std::string, double>>{
           {"Findings: At the splenic flexure there was a polyp of about a centimetre and a half.",
            15.0},
           {"Findings: a polyp of about one and a half centimetres in the sigmoid.", 15.0},
           {"Findings: a polyp of about a centimetre in the sigmoid.", 10.0},
           {"Findings: a new half-a-centimetre polyp in the descending colon.", 5.0},
           {"检查所见：乙状结肠见一枚有蒂息肉，头端约1.0cm，蒂粗约0.4cm，予热圈套电切。", 10.0}}) {
    const auto l = labeller().label(text);
    ASSERT_EQ(l.polyps.size(), 1u) << text;
    EXPECT_DOUBLE_EQ(l.polyps[0].size_mm.value.value_or(0), mm) << text;
  }
  EXPECT_EQ(*labeller()
                 .label("Findings: Rectum: the known 40 x 35 mm LST-G was removed en bloc by ESD.")
                 .polyp_present.value,
            "positive");
  // Segments each with their count and sizes after the polyps are named; 均为 for all of them.
  const auto counted = labeller().label(
      "所见：全结肠共见息肉5枚：升结肠2枚（0.3cm、0.5cm），横结肠1枚（0.6cm），乙状结肠2枚（均约"
      "0.4cm），均予CSP切除。\n病理：送检息肉组织5枚，均为管状腺瘤。");
  ASSERT_EQ(counted.polyps.size(), 4u);
  EXPECT_EQ(*counted.polyp_count.value, 5);
  EXPECT_EQ(counted.polyps[3].quantity, 2);
  for (const auto& p : counted.polyps) EXPECT_EQ(p.group.value.value_or(""), "adenoma");
  // Forms: dot leaders, a written-out BBPS total, "PATHOLOGY - FINAL".
  const auto form = labeller().label(
      "Preparation ........... BBPS R3 T3 L3 = 9\nPolyps ................ None\n"
      "Conclusion ............ No polyps detected.");
  EXPECT_EQ(*form.polyp_present.value, "negative");
  EXPECT_EQ(form.bowel_prep.value.value_or(""), "excellent");
  const auto final_path = labeller().label(
      "Findings:\nA. Ascending colon: 5 mm sessile polyp, cold snare.\nB. Sigmoid colon: 8 mm "
      "flat polyp, cold snare.\nPATHOLOGY - FINAL\nA. Ascending colon, polypectomy: hyperplastic "
      "polyp.\nB. Sigmoid colon, polypectomy: tubular adenoma.");
  ASSERT_EQ(final_path.polyps.size(), 2u);
  EXPECT_EQ(final_path.polyps[1].group.value.value_or(""), "adenoma");
}

TEST(ReportRules, CorrectionsDoubtsAndDates) {
  // A correction names its specimen anywhere and replaces the earlier result.
  const auto amended = labeller().label(
      "Findings:\nA. Cecum: 8 mm flat polyp, removed with cold snare.\nB. Ascending colon: 5 mm "
      "sessile polyp, removed with cold snare.\nPathology:\nA. Cecum: tubular adenoma.\nB. "
      "Ascending colon: hyperplastic polyp.\nADDENDUM: On review, specimen B is reclassified as "
      "sessile serrated lesion without dysplasia (previously reported as hyperplastic polyp).");
  ASSERT_EQ(amended.polyps.size(), 2u);
  EXPECT_EQ(amended.polyps[1].histology.value.value_or(""), "sessile_serrated_lesion");
  const auto revised = labeller().label(
      "检查所见：横结肠见一枚0.9cm扁平息肉，予CSP切除。直肠见一枚0.3cm小息肉，予活检钳钳除。\n"
      "病理诊断：\n1.（横结肠）增生性息肉。\n2.（直肠）增生性息肉。\n"
      "补充报告：标本1经深切及复阅，修正诊断为：无蒂锯齿状病变（SSL）。");
  ASSERT_EQ(revised.polyps.size(), 2u);
  EXPECT_EQ(revised.polyps[0].group.value.value_or(""), "adenoma");
  EXPECT_EQ(revised.polyps[1].group.value.value_or(""), "non_neoplastic");
  // A question mark doubts; one side of a "versus" resolves nothing.
  EXPECT_EQ(*labeller()
                 .label("所见:乙状结肠见一处小隆起,约2mm,观察不清.\n诊断:乙状结肠息肉?")
                 .polyp_present.value,
            "uncertain");
  EXPECT_EQ(*labeller()
                 .label("Findings: a questionable 3 mm polyp versus a prominent mucosal fold. "
                        "Otherwise normal.")
                 .polyp_present.value,
            "uncertain");
  // "plus a …" and "and a further one in …" open a second polyp; "the lesion" refers back; a
  // date written day first stamps this exam.
  const auto plus = labeller().label(
      "HPI: Colonoscopy today showed a 40mm fungating mass at the hepatic flexure, biopsied, plus "
      "a "
      "6mm transverse polyp removed by cold snare. Scope passed beyond the lesion to the caecum.");
  ASSERT_EQ(plus.polyps.size(), 2u);
  EXPECT_FALSE(removed_today(plus.polyps[0].removal.value));
  EXPECT_TRUE(removed_today(plus.polyps[1].removal.value));
  const auto further = labeller().label(
      "I found two small polyps in the sigmoid which I removed with a cold snare, and a further "
      "one in the rectum, about 4 mm across, which I took off with cold forceps.");
  EXPECT_EQ(*further.polyp_count.value, 3);
  EXPECT_EQ(*labeller()
                 .label("Inpatient colonoscopy (16/08/2024) showed a 25 mm flat polyp at the IC "
                        "valve.")
                 .polyps.at(0)
                 .segment.value,
            "caecum");
}

TEST(ReportRules, CountsListsAndDictation) {
  // "N x size" counts, also before a range or an item's equal size; lettered items under a head
  // line, one collective result for them; an ordinal is no count.
  EXPECT_EQ(*labeller().label("Findings:\nSigmoid: 3 x 3-5mm polyps, CSP.").polyp_count.value, 3);
  EXPECT_EQ(*labeller().label("Findings:\nRectum: 2 x 2mm polyps, APC.").polyp_count.value, 2);
  EXPECT_EQ(*labeller().label("Findings: A 2 x 2mm polyp in the rectum, APC.").polyp_count.value,
            1);
  const auto lettered = labeller().label(
      "Polyps (n=3), all retrieved:\n a) transverse colon, 6 mm, cold snare\n b) transverse "
      "colon, 6 mm, cold snare\n c) descending colon, 3 mm, cold forceps\n"
      "Histopathology (a-c): Tubular adenomas, low-grade dysplasia.");
  ASSERT_EQ(lettered.polyps.size(), 3u);
  for (const auto& p : lettered.polyps) EXPECT_EQ(p.group.value.value_or(""), "adenoma");
  EXPECT_EQ(*labeller()
                 .label("Findings: 7mm polyp in the desc colon, removed. 2nd polyp 4mm in rectum "
                        "- removed w/ hot forceps.")
                 .polyp_count.value,
            2);
  // "multiple …, at least eight": the bound stated after the polyps.
  const auto many = labeller().label(
      "In the rectum there were multiple diminutive sessile polyps, at least eight, 2-4 mm in "
      "size, all removed with cold snare.");
  EXPECT_FALSE(many.count_exact);
  EXPECT_EQ(*many.polyp_count.value, 8);
  // Dictation: "Number two, …" labels an item; "one point two centimetres" is 12 mm; a dated
  // pathology header ("PATH 11/18/24:") and "both TA".
  const auto dictated = labeller().label(
      "Findings: Number one, a 3 mm polyp in the rectum, removed cold snare. Number two, a "
      "sessile polyp in the sigmoid colon, one point two centimetres, removed with hot snare.\n"
      "PATH 11/18/24: both TA.");
  ASSERT_EQ(dictated.polyps.size(), 2u);
  EXPECT_EQ(*dictated.polyp_count.value, 2);
  EXPECT_DOUBLE_EQ(*dictated.polyps[1].size_mm.value, 12.0);
  EXPECT_EQ(dictated.polyps[0].group.value.value_or(""), "adenoma");
  EXPECT_EQ(dictated.polyps[1].group.value.value_or(""), "adenoma");
  // 无柄 (sessile) negates nothing; the segment the scope reached is where the mass is; what
  // stopped the scope is not what the exam was about.
  const auto sessile = labeller().label("检查所见：\n降結腸：0.8×0.7公分無柄息肉一顆，行EMR切除。");
  ASSERT_EQ(sessile.polyps.size(), 1u);
  EXPECT_DOUBLE_EQ(*sessile.polyps[0].size_mm.value, 8.0);
  const auto mass = labeller().label(
      "【检查所见】\n进镜至降结肠中段见一菜花样肿物，内镜无法通过，于肿物取活检6块送检。");
  ASSERT_EQ(mass.polyps.size(), 1u);
  EXPECT_EQ(mass.polyps[0].segment.value.value_or(""), "descending");
  EXPECT_EQ(*labeller()
                 .label("进镜至乙状结肠中段，因肠腔狭窄、进镜困难终止检查。所见直肠、乙状结肠"
                        "黏膜未见明显异常。")
                 .polyp_present.value,
            "uncertain");
}

TEST(ReportRules, OutpatientNotesClausesAndSpecimens) {
  // Today's exam told inside the history of an outpatient note; 无痛 (painless) negates nothing.
  const auto today = labeller().label(
      "现病史：患者1周前便OB(+)"
      "。今日行无痛肠镜：降结肠见一枚黄豆大小息肉，予热圈套切除；余未见异常。\n"
      "既往史：3年前外院肠镜切除结肠息肉2枚。");
  EXPECT_EQ(*today.polyp_present.value, "positive");
  EXPECT_EQ(*today.polyp_count.value, 1);
  // Each clause led by a segment and 见 is a polyp of its own; 各见 gives one per segment.
  const auto clauses =
      labeller().label("检查所见：肝曲见一枚黄豆大小息肉，横结肠见一枚绿豆大小息肉，表面光滑。");
  ASSERT_EQ(clauses.polyps.size(), 2u);
  EXPECT_EQ(*clauses.polyps[0].segment.value, "hepatic_flexure");
  EXPECT_EQ(*clauses.polyps[1].segment.value, "transverse");
  const auto each = labeller().label(
      "检查所见：升结肠及横结肠各见一枚约0.4cm息肉，均予冷圈套切除。\n"
      "病理诊断：（升结肠）管状腺瘤；（横结肠）增生性息肉。");
  ASSERT_EQ(each.polyps.size(), 2u);
  EXPECT_EQ(*each.polyps[0].segment.value, "ascending");
  EXPECT_EQ(*each.polyps[0].group.value, "adenoma");
  EXPECT_EQ(*each.polyps[1].group.value, "non_neoplastic");
  // "(2) …": the result of findings item 2, not of the second polyp; "4 and 6 mm" are two sizes.
  const auto items = labeller().label(
      "Findings:\n1. Cecum: normal.\n2. Transverse colon: one 5 mm polyp, cold snare.\n"
      "3. Sigmoid colon: one 3 mm polyp, cold snare.\nPathology: (2) tubular adenoma; (3) "
      "hyperplastic polyp.");
  ASSERT_EQ(items.polyps.size(), 2u);
  EXPECT_EQ(*items.polyps[0].group.value, "adenoma");
  EXPECT_EQ(*items.polyps[1].group.value, "non_neoplastic");
  const auto sizes = labeller().label(
      "Findings: Two polyps of 4 and 6 mm in the descending colon were removed with a cold snare. "
      "A polyp in the sigmoid colon. It measured approximately 18 mm.");
  ASSERT_EQ(sizes.polyps.size(), 3u);
  EXPECT_DOUBLE_EQ(*sizes.polyps[0].size_mm.value, 4.0);
  EXPECT_DOUBLE_EQ(*sizes.polyps[1].size_mm.value, 6.0);
  EXPECT_DOUBLE_EQ(*sizes.polyps[2].size_mm.value, 18.0);
  // A specimen named by its size; a lesion resolved as none is a negative report.
  const auto by_size = labeller().label(
      "Findings: Rectum: two polyps, 5mm and 7mm, cold snare.\nHistology: (A) 7mm - sessile "
      "serrated lesion; (B) 5mm - hyperplastic polyp.");
  ASSERT_EQ(by_size.polyps.size(), 2u);
  EXPECT_EQ(*by_size.polyps[0].histology.value, "hyperplastic_polyp");
  EXPECT_EQ(*by_size.polyps[1].histology.value, "sessile_serrated_lesion");
  EXPECT_EQ(*labeller()
                 .label("FINDINGS: A small lymphoid follicle in the caecum, not a polyp.")
                 .polyp_present.value,
            "negative");
  // More ways to write several polyps: 另见, "and a … polyp in the …", segments paired with
  // sizes, "(>20)"; a preparation field does not swallow the findings on its line.
  EXPECT_EQ(*labeller()
                 .label("检查所见：直肠见一枚约0.5cm息肉予冷圈套切除，另见2枚0.2cm微小息肉予钳除。")
                 .polyp_count.value,
            3);
  const auto letter = labeller().label(
      "I found a 7 mm sessile polyp at the splenic flexure which was removed with a cold snare, "
      "and a 2 mm polyp in the rectum which was removed with cold forceps.");
  ASSERT_EQ(letter.polyps.size(), 2u);
  EXPECT_EQ(*letter.polyps[1].segment.value, "rectum");
  EXPECT_EQ(*letter.polyps[1].removal.value, "forceps");
  EXPECT_EQ(
      *labeller()
           .label("Findings: Sessile polyps: caecum 4 mm, transverse 6 mm, sigmoid 8 mm - all "
                  "removed by cold snare.")
           .polyp_count.value,
      3);
  const auto numerous =
      labeller().label("Findings: Numerous (>20) small polyps throughout the colon.");
  EXPECT_FALSE(numerous.count_exact);
  EXPECT_EQ(*numerous.polyp_count.value, 20);
  const auto prep = labeller().label(
      "检查所见：\n肠道准备：良好。进镜至回盲部。直乙交界处见一枚0.3cm无蒂息肉，予活检钳钳除。");
  ASSERT_EQ(prep.polyps.size(), 1u);
  EXPECT_EQ(*prep.polyps[0].segment.value, "sigmoid");
  EXPECT_DOUBLE_EQ(*prep.polyps[0].size_mm.value, 3.0);
}

TEST(ReportRules, EvidenceOffsetsAreCodePoints) {
  const std::string report = "检查所见：横结肠见一枚息肉。";
  const auto j = labels_to_json(labeller().label(report), report);
  const auto ev = j["polyp_present"]["evidence"][0];
  EXPECT_EQ(ev[0].get<int>(), 11);  // 检查所见：横结肠见一枚 = 11 code points
  EXPECT_EQ(ev[1].get<int>(), 13);
  const auto back = labels_from_json(j);
  EXPECT_EQ(*back.polyp_present.value, "positive");
  auto bad = j;
  bad["polyp_present"]["value"] = "maybe";
  EXPECT_THROW(labels_from_json(bad), Error);
}

TEST(ReportRules, LexiconErrorsNameTheKey) {
  try {
    load_lexicon("language: en\nversion: t\nsegmnts: {caecum: [cecum]}\n", "test.yaml");
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test.yaml:3:1: 'segmnts'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_lexicon("language: en\nversion: t\nsegments: {appendix: [x]}\n", "t.yaml"),
               Error);
  EXPECT_THROW(
      load_lexicon("language: en\nversion: t\nsentence_breaks: ['.']\ntargets: {polyp: [a. b]}\n",
                   "t.yaml"),
      Error);
}

// A value of the wrong type is an error naming the file, line and column, not yaml-cpp's raw
// "bad conversion".
TEST(ReportRules, LexiconValueErrorsNameFileLineAndColumn) {
  try {
    load_lexicon("language: en\nversion: t\nscope_tokens: many\n", "bad.yaml");
    FAIL() << "scope_tokens: many was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:3:15"), std::string::npos) << e.what();
  }
  try {
    load_lexicon("language: en\nversion: t\nsize_units: {mm: [1]}\n", "units.yaml");
    FAIL() << "a list as a size factor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("units.yaml:3:"), std::string::npos) << e.what();
  }
}

TEST(ReportRules, UserLexiconReplacesTheOneOfItsLanguage) {
  testing::TempDir dir;
  {
    std::ofstream f(dir / "mine.yaml");
    f << "language: en\nversion: en-mine\ntargets: {polyp: [growth]}\n"
         "modifiers: {negated: {forward: [no]}}\n";
  }
  const auto lexicons = load_lexicons({dir / "mine.yaml"});
  ASSERT_EQ(lexicons.size(), 2u);
  const RulesLabeller mine(lexicons);
  EXPECT_EQ(mine.version(), "rules-1/en-mine,zh-6");
  EXPECT_EQ(*mine.label("Findings: a growth in the rectum.").polyp_present.value, "positive");
  EXPECT_EQ(*mine.label("Findings: a polyp in the rectum.").polyp_present.value, "not_mentioned");
}

}  // namespace
}  // namespace endoked::report
