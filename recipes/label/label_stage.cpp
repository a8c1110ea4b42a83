#include "label_stage.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/parallel.h"
#include "endoked/core/progress.h"
#include "endoked/report/eval.h"
#include "endoked/core/sha256.h"
#include "endoked/data/csv.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/report/ensemble.h"
#include "endoked/report/lexicons.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace endoked::recipes {
namespace {

// The labellers of one run.
struct Labellers {
  std::unique_ptr<report::RulesLabeller> rules;
  std::unique_ptr<report::LlmClient> llm;
  const LabelOptions& o;

  explicit Labellers(const LabelOptions& opt) : o(opt) {
    ENDOKED_CHECK(o.backend == "rules" || o.backend == "llm" || o.backend == "ensemble",
                  "label.backend must be rules, llm or ensemble, got '", o.backend, "'");
    ENDOKED_CHECK(o.threads >= 1, "label.threads must be ≥ 1, got ", o.threads);
    ENDOKED_CHECK(o.llm_samples >= 1, "label.llm_samples must be ≥ 1, got ", o.llm_samples);
    if (o.backend != "llm")
      rules = std::make_unique<report::RulesLabeller>(report::load_lexicons(o.lexicons), o.language);
    if (o.backend != "rules") llm = std::make_unique<report::LlmClient>(o.llm);
  }
  std::string version() const {
    std::string v = rules ? rules->version() : "";
    if (llm) v += (v.empty() ? "" : "+") + llm->version();
    return v;
  }
  int threads() const { return llm ? o.llm.concurrency : o.threads; }

  report::ExamLabels label(const std::string& text, std::vector<report::ReviewRow>& review) const {
    if (o.backend == "rules") return rules->label(text);
    if (o.backend == "llm") return llm->label(text, 0);
    std::vector<report::ExamLabels> samples;
    for (int k = 0; k < o.llm_samples; ++k) samples.push_back(llm->label(text, k));
    return report::ensemble_labels(rules->label(text), samples, text, o.count_review, review);
  }
};

// Writes one output shard; returns its part of the summary.
json label_shard(const Labellers& labellers, const LabelOptions& o, const data::Manifest& in, int s,
                 const std::string& partial, Progress& progress) {
  std::vector<std::string> ids, reports;
  const data::ShardInfo& info = in.shards[static_cast<std::size_t>(s)];
  if (o.verify_inputs)
    ENDOKED_CHECK(sha256_file(o.store + "/" + info.file) == info.sha256, "label: input shard ",
                  info.file, " of '", o.store,
                  "' does not match the SHA-256 in its manifest (changed after it was written); "
                  "check it with `endoked store verify ", o.store,
                  "`, or set label.verify_inputs=false to read it anyway");
  {
    data::ShardReader r(o.store + "/" + info.file);
    ids = r.strings("exams", "id");
    reports = r.strings("exams", "report");
  }
  const auto n = static_cast<std::int64_t>(ids.size());
  std::vector<report::ExamLabels> labels(ids.size());
  std::vector<std::vector<report::ReviewRow>> reviews(ids.size());
  parallel_for(n, labellers.threads(), [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    try {
      labels[k] = labellers.label(reports[k], reviews[k]);
    } catch (const Error& e) {
      ENDOKED_FAIL("label: exam '", ids[k], "' (shard ", s, "): ", e.reason());
    }
    progress.add();
  });
  data::ShardWriter w(partial, s, "labels");
  data::TableWriter<data::LabelsRow> rows(w, "exams");
  json counts = json::object();
  json review = json::array();
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const auto& l = labels[k];
    const std::string presence = l.polyp_present.value.value_or("not_mentioned");
    rows.add({ids[k], report::labels_to_json(l, reports[k]).dump(), presence,
              report::presence_code(presence), l.polyp_count.value.value_or(-1),
              l.count_exact ? 1 : 0, l.polyp_present.confidence, l.labeller, l.language});
    counts[presence] = counts.value(presence, 0) + 1;
    for (const auto& row : reviews[k]) review.push_back(report::review_csv_line(ids[k], row));
  }
  return {{"info", w.close().to_json()}, {"counts", counts}, {"review", review}};
}

}  // namespace

json run_label(dist::Communicator& comm, const LabelOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "label.store is empty: name the record store to label");
  const Labellers labellers(o);
  const data::Manifest in = data::Manifest::load(o.store);
  engine::begin_outputs(comm, {{o.output, "labels"}}, o.overwrite, {o.store},
                        engine::resume_key(config::to_yaml(o), in.content_sha256()));
  const std::string partial = data::partial_dir(o.output);
  const int shards = static_cast<int>(in.shards.size());
  log::info("label: {} exams in {} shard(s) with the {} backend ({}) on {} rank(s)",
            in.exam_count(), shards, o.backend, labellers.version(), comm.size());
  engine::ShardedWork w;
  w.stage = "label";
  w.shards = shards;
  w.unit = "reports";
  w.resumable_output = o.output;
  w.items = [&](int s) { return in.shards[static_cast<std::size_t>(s)].exams; };
  w.work = [&](int s, Progress& progress) {
    return label_shard(labellers, o, in, s, partial, progress);
  };
  w.rank_part = [&] { return labellers.llm ? labellers.llm->stats().to_json() : json::object(); };
  const engine::ShardedResult done = engine::run_shards(comm, w);
  const double seconds = done.seconds;

  data::Manifest m;
  m.kind = "labels";
  m.columns = data::layout<data::LabelsRow>("exams");
  m.shards.resize(static_cast<std::size_t>(shards));
  json counts = json::object(), llm = json::object();
  std::vector<std::string> review;
  for (const auto& part : done.ranks)
    for (const auto& [k, v] : part.items()) llm[k] = llm.value(k, 0) + v.get<std::int64_t>();
  for (int s = 0; s < shards; ++s) {
    const json& sh = done.shards[static_cast<std::size_t>(s)];
    m.shards[static_cast<std::size_t>(s)] = data::ShardInfo::from_json(sh["info"]);
    for (const auto& [k, v] : sh["counts"].items())
      counts[k] = counts.value(k, 0) + v.get<std::int64_t>();
    for (const auto& line : sh["review"]) review.push_back(line.get<std::string>());
  }
  const std::int64_t exams = m.exam_count();
  json summary = {{"exams", exams},
                  {"polyp_present", counts},
                  {"backend", o.backend},
                  {"version", labellers.version()},
                  {"ranks", comm.size()},
                  {"seconds", seconds},
                  {"reports_per_s", seconds > 0 ? static_cast<double>(exams) / seconds : 0.0},
                  {"review_rows", review.size()}};
  if (!llm.empty()) summary["llm"] = llm;
  engine::commit_on_root(comm, [&] {
    m.provenance = engine::provenance(
        "label", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                  {"input_content_sha256", in.content_sha256()},
                  {"labeller", labellers.version()},
                  {"config_sha256", sha256_hex(config::to_yaml(o))}});
    m.summary = summary;
    std::string csv = std::string(report::kReviewCsvHeader) + "\n";
    for (const auto& line : review) csv += line + "\n";
    files::atomic_write(partial + "/review.csv", csv);
    data::commit_store(o.output, m);
    run.log_metrics(json{{"stage", "label"}, {"summary", summary}});
  });
  log::info("label: {} reports in {:.2f}s ({:.0f} reports/s) -> {}", exams, seconds,
            summary["reports_per_s"].get<double>(), o.output);
  for (const auto& [k, v] : counts.items()) log::info("  {:>14} {:>7}", k, v.get<std::int64_t>());
  if (!review.empty())
    log::info("  {} row(s) for review -> {}/review.csv", review.size(), o.output);
  if (!llm.empty()) log::info("  llm: {}", llm.dump());
  return summary;
}

namespace {

// exam id → labels JSON, for every exam of a labels store.
std::vector<std::pair<std::string, json>> read_labels(const std::string& dir) {
  const data::Manifest m = data::Manifest::load(dir);
  ENDOKED_CHECK(m.kind == "labels", "'", dir, "' is a ", m.kind, " store, not a labels store");
  std::vector<std::pair<std::string, json>> out;
  for (const auto& s : m.shards) {
    data::ShardReader r(dir + "/" + s.file);
    for (const auto& row : data::read_rows<data::LabelsRow>(r, "exams")) {
      try {
        out.emplace_back(row.id, json::parse(row.labels));
      } catch (const json::exception& e) {
        ENDOKED_FAIL("labels store '", dir, "', exam '", row.id, "': bad labels JSON: ", e.what());
      }
    }
  }
  return out;
}

std::map<std::string, json> read_truth(const std::string& path) {
  std::map<std::string, json> truth;
  if (fs::is_directory(path)) {
    const data::Manifest m = data::Manifest::load(path);
      for (const auto& s : m.shards) {
      data::ShardReader r(path + "/" + s.file);
      ENDOKED_CHECK(r.has("exams", "report_truth"), "truth store '", path,
                    "' has no exams/report_truth column (a store written by endoked synth has)");
      const auto& ids = r.strings("exams", "id");
      const auto& t = r.strings("exams", "report_truth");
      for (std::size_t i = 0; i < ids.size(); ++i) truth[ids[i]] = json::parse(t[i]);
    }
    return truth;
  }
  const data::CsvTable table = data::read_csv(path);
  ENDOKED_CHECK(table.unterminated_line == 0, "truth CSV '", path, "' line ",
                table.unterminated_line, ": a quoted field never closes");
  const int id = table.column("exam_id"), present = table.column("polyp_present");
  ENDOKED_CHECK(id >= 0 && present >= 0, "truth CSV '", path,
                "' needs the columns exam_id and polyp_present");
  for (const auto& row : table.rows) {
    ENDOKED_CHECK(row.fields.size() == table.header.size(), "truth CSV '", path, "' line ",
                  row.line, ": ", row.fields.size(), " fields, the header has ",
                  table.header.size());
    json t = {{"polyp_present", row.fields[static_cast<std::size_t>(present)]}};
    for (std::size_t c = 0; c < table.header.size(); ++c) {
      const std::string& h = table.header[c];
      const std::string& v = row.fields[c];
      if (v.empty() || h == "exam_id" || h == "polyp_present") continue;
      try {
        if (h == "polyp_count" && !v.empty() && v.back() == '+')  // "3+": at least 3
          t[h] = std::to_string(std::stoll(v)) + "+";
        else if (h == "polyp_count")
          t[h] = std::stoll(v);
        else if (h == "history_of_polypectomy" || h == "caecum_reached")
          t[h] = v == "true" || v == "1";
        else if (h == "polyps")
          t[h] = json::parse(v);
        else if (h == "bowel_prep")
          t[h] = v;
      } catch (const std::exception& e) {
        ENDOKED_FAIL("truth CSV '", path, "' line ", row.line, ", column ", h, ": '", v,
                     "' unreadable (", e.what(), ")");
      }
    }
    truth[row.fields[static_cast<std::size_t>(id)]] = t;
  }
  return truth;
}

}  // namespace

json run_label_eval(const LabelEvalOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.labels.empty() && !o.truth.empty(),
                "label_eval.labels and label_eval.truth are required");
  const auto labels = read_labels(o.labels);
  const auto truth = read_truth(o.truth);
  // Reports, for quoting evidence: from the store the labels were made from, when it is there.
  std::map<std::string, std::string> reports;
  const data::Manifest lm = data::Manifest::load(o.labels);
  const std::string input = lm.provenance.value("input_store", "");
  if (!input.empty() && fs::exists(input + "/manifest.json")) {
    data::RecordStore records(input);
    for (std::int64_t e = 0; e < records.exam_count(); ++e) {
      auto rec = records.exam(e);
      reports[rec.id] = std::move(rec.report);
    }
  }
  report::LabelEvaluator ev;
  std::int64_t unmatched = 0;
  for (const auto& [id, j] : labels) {
    auto t = truth.find(id);
    if (t == truth.end()) {
      ++unmatched;
      continue;
    }
    report::ExamLabels l = report::labels_from_json(j);
    const std::string& text = reports[id];
    report::code_points_to_bytes(l, text);
    ev.add(id, l, t->second, text);
  }
  ENDOKED_CHECK(unmatched < static_cast<std::int64_t>(labels.size()), "label eval: no exam of '",
                o.labels, "' is in the truth '", o.truth, "'");
  json out = {{"labels", o.labels},
              {"truth", o.truth},
              {"exams", labels.size() - static_cast<std::size_t>(unmatched)},
              {"not_in_truth", unmatched},
              {"polyp_present_positive_f1", ev.positive_f1()},
              {"fields", ev.summary()}};
  files::atomic_write(run.path() + "/eval.json", out.dump(2) + "\n");
  std::string errors;
  for (const auto& e : ev.errors()) errors += e.dump() + "\n";
  files::atomic_write(run.path() + "/errors.jsonl", errors);
  std::string md = "# Label evaluation\n\n`" + o.labels + "` against `" + o.truth +
                   "`: " + std::to_string(out["exams"].get<std::int64_t>()) +
                   " exams.\n\n| field | accuracy | scored |\n|---|---|---|\n";
  for (const auto& [field, f] : out["fields"].items())
    md += "| " + field + " | " + fmt::format("{:.4f}", f["accuracy"].get<double>()) + " | " +
          std::to_string(f["scored"].get<std::int64_t>()) + " |\n";
  md += "\npolyp_present confusion (rows: truth, columns: predicted)\n\n| truth \\ predicted |";
  const auto& conf = out["fields"]["polyp_present"]["confusion_truth_to_predicted"];
  for (const auto& p : report::kPresence) md += " " + p + " |";
  md += "\n|---|---|---|---|---|\n";
  for (const auto& [t, row] : conf.items()) {
    md += "| " + t + " |";
    for (const auto& p : report::kPresence) md += " " + std::to_string(row.value(p, 0)) + " |";
    md += "\n";
  }
  files::atomic_write(run.path() + "/eval.md", md);
  run.log_metrics(json{{"stage", "label_eval"}, {"summary", out}});
  log::info("label eval: {} exams; polyp_present F1(positive) {:.4f}, accuracy {:.4f}",
            out["exams"].get<std::int64_t>(), ev.positive_f1(), ev.accuracy("polyp_present"));
  for (const auto& [field, f] : out["fields"].items())
    log::info("  {:<24} {:.4f} ({} scored)", field, f["accuracy"].get<double>(),
              f["scored"].get<std::int64_t>());
  for (std::size_t i = 0; i < ev.errors().size() && static_cast<int>(i) < o.errors_listed; ++i)
    log::info("  error: {}", ev.errors()[i].dump());
  log::info("label eval -> {}/eval.json, errors.jsonl, eval.md", run.path());
  return out;
}

void export_labels(const std::string& dir, const std::string& csv_path,
                   const std::string& jsonl_path) {
  ENDOKED_CHECK(!csv_path.empty() || !jsonl_path.empty(),
                "label export: name --csv and/or --jsonl");
  const auto labels = read_labels(dir);
  std::string csv =
      "exam_id,polyp_present,confidence,polyp_count,count_exact,history_of_polypectomy,bowel_prep,"
      "caecum_reached,labeller,version,polyps\n";
  std::string jsonl;
  auto value = [](const json& f) -> std::string {
    if (!f.is_object() || !f.contains("value") || f["value"].is_null()) return "";
    const json& v = f["value"];
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
  };
  for (const auto& [id, j] : labels) {
    using data::csv_field;
    json polyps = json::array();
    for (const auto& p : j.value("polyps", json::array())) {
      json flat = json::object();
      for (const auto& [k, f] : p.items())
        if (k != "evidence") flat[k] = f.is_object() ? f.value("value", json(nullptr)) : f;
      polyps.push_back(flat);
    }
    csv += csv_field(id) + "," + csv_field(value(j["polyp_present"])) + "," +
           fmt::format("{:.3f}", j["polyp_present"].value("confidence", 0.0)) + "," +
           value(j["polyp_count"]) + "," +
           (j["polyp_count"].value("exact", true) ? "true" : "false") + "," +
           value(j["history_of_polypectomy"]) + "," + value(j["bowel_prep"]) + "," +
           value(j["caecum_reached"]) + "," + csv_field(j.value("labeller", "")) + "," +
           csv_field(j.value("version", "")) + "," + csv_field(polyps.dump()) + "\n";
    json line = j;
    line["exam_id"] = id;
    jsonl += line.dump() + "\n";
  }
  if (!csv_path.empty()) files::atomic_write(csv_path, csv);
  if (!jsonl_path.empty()) files::atomic_write(jsonl_path, jsonl);
  log::info("label export: {} exams from {}{}{}", labels.size(), dir,
            csv_path.empty() ? "" : " -> " + csv_path,
            jsonl_path.empty() ? "" : " -> " + jsonl_path);
}

}  // namespace endoked::recipes
