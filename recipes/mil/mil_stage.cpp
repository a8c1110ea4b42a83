#include "mil_stage.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <unordered_map>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/core/ranking.h"
#include "endoked/core/seed.h"
#include "endoked/core/sha256.h"
#include "endoked/data/csv.h"
#include "endoked/data/dataset.h"
#include "endoked/data/loader.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/distributed/preemption.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/weights.h"
#include "mil_scoring.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
using namespace mil;  // the stage and its parts (mil_scoring.h)
namespace {

// One epoch's items and what its steps need.
struct Epoch {
  std::int64_t epoch = -1;
  bool teacher = true;
  std::shared_ptr<ImageItems> items;
  // teacher: per item, its bags' labels and, per image of the item (in order), its bag
  std::vector<std::vector<int>> bag_label;
  std::vector<std::vector<int>> bag_of;
  std::vector<float> target;  // student: per global image
  std::int64_t mined_out = 0;
};

// The exams training learns from (labels 1 / 0, at least one image).
struct TrainingSet {
  const Corpus& corpus;
  std::shared_ptr<const data::Dataset> images;
  std::vector<std::int64_t> exams, positives, negatives;
  std::vector<std::int64_t> images_of_exams;  // their images, in order
};

// Hard-positive mining in one positive bag: each image the student scores ≥ threshold is left
// out with probability `drop`; one such image always stays. Returns the kept images (sorted).
std::vector<std::int64_t> mine_bag(const std::vector<std::int64_t>& bag, const Scores& s,
                                   const MilMining& m, Rng& rng, std::int64_t& mined_out) {
  std::vector<std::int64_t> easy, stay;
  for (const std::int64_t g : bag) {
    const float x = s.student[static_cast<std::size_t>(g)];
    (!std::isnan(x) && sigmoid(x) >= m.threshold ? easy : stay).push_back(g);
  }
  std::vector<std::int64_t> kept_easy;
  for (const std::int64_t g : easy)
    if (!rng.bernoulli(m.drop)) kept_easy.push_back(g);
  if (kept_easy.empty() && !easy.empty())
    kept_easy.push_back(
        easy[static_cast<std::size_t>(rng.randint(0, static_cast<std::int64_t>(easy.size()) - 1))]);
  mined_out += static_cast<std::int64_t>(easy.size() - kept_easy.size());
  stay.insert(stay.end(), kept_easy.begin(), kept_easy.end());
  std::sort(stay.begin(), stay.end());
  return stay;
}

// A teacher epoch: bags (balanced, subsets of max_images, mined when `mining`) in groups.
std::shared_ptr<Epoch> teacher_epoch(const TrainingSet& t, const MilOptions& o, std::int64_t e,
                                     const Scores* mining) {
  auto ep = std::make_shared<Epoch>();
  ep->epoch = e;
  ep->teacher = true;
  const Corpus& c = t.corpus;
  Rng rng(o.seed, "mil-bags", static_cast<std::uint64_t>(e));
  std::vector<std::int64_t> bags;
  if (o.balance) {
    const std::size_t n = std::max(t.positives.size(), t.negatives.size());
    std::vector<std::int64_t> p = t.positives, q = t.negatives;
    shuffle(p, rng);  // the minority class cycles through a fresh order
    shuffle(q, rng);
    for (std::size_t i = 0; i < n; ++i) {
      bags.push_back(p[i % p.size()]);
      bags.push_back(q[i % q.size()]);
    }
  } else {
    bags = t.exams;
  }
  std::vector<std::vector<std::int64_t>> items;
  std::vector<std::string> names;
  for (const std::int64_t b : bags) {
    const auto& span = c.spans[static_cast<std::size_t>(b)];
    const int label = c.label[static_cast<std::size_t>(b)];
    std::vector<std::int64_t> keep(static_cast<std::size_t>(span.image_count));
    std::iota(keep.begin(), keep.end(), span.first_image);
    if (mining && label == 1) keep = mine_bag(keep, *mining, o.mining, rng, ep->mined_out);
    if (static_cast<int>(keep.size()) > o.max_images) {  // a random subset, in exam order
      shuffle(keep, rng);
      keep.resize(static_cast<std::size_t>(o.max_images));
      std::sort(keep.begin(), keep.end());
    }
    if (items.empty() || ep->bag_label.back().size() == static_cast<std::size_t>(o.group)) {
      items.emplace_back();
      ep->bag_label.emplace_back();
      ep->bag_of.emplace_back();
      names.push_back(span.id);
    } else {
      names.back() += "+" + span.id;
    }
    items.back().insert(items.back().end(), keep.begin(), keep.end());
    ep->bag_of.back().insert(ep->bag_of.back().end(), keep.size(),
                             static_cast<int>(ep->bag_label.back().size()));
    ep->bag_label.back().push_back(label);
  }
  ep->items = std::make_shared<ImageItems>(t.images, std::move(items), std::move(names));
  return ep;
}

// A student epoch: the fused, normalised teacher scores as targets (0 in negative exams), the
// training images in random chunks.
std::shared_ptr<Epoch> student_epoch(const TrainingSet& t, const MilOptions& o, std::int64_t e,
                                     const Scores& s) {
  auto ep = std::make_shared<Epoch>();
  ep->epoch = e;
  ep->teacher = false;
  const Corpus& c = t.corpus;
  const Range ra = range_of(s.attention, t.images_of_exams);
  const Range rd = range_of(s.dsmil, t.images_of_exams);
  const double w1 = o.teacher_weights[0] / (o.teacher_weights[0] + o.teacher_weights[1]);
  ep->target.assign(static_cast<std::size_t>(c.images), kUnscored);
  std::vector<std::int64_t> usable;
  for (const std::int64_t ex : t.exams) {
    const auto& span = c.spans[static_cast<std::size_t>(ex)];
    const bool pos = c.label[static_cast<std::size_t>(ex)] == 1;
    for (std::int64_t k = 0; k < span.image_count; ++k) {
      const auto g = static_cast<std::size_t>(span.first_image + k);
      if (std::isnan(s.attention[g])) continue;  // unreadable at scoring time
      const double fused = w1 * ra.apply(s.attention[g]) + (1 - w1) * rd.apply(s.dsmil[g]);
      ep->target[g] = pos ? static_cast<float>(std::clamp(fused, 0.0, 1.0)) : 0.0F;
      usable.push_back(static_cast<std::int64_t>(g));
    }
  }
  Rng rng(o.seed, "mil-chunks", static_cast<std::uint64_t>(e));
  shuffle(usable, rng);
  std::vector<std::vector<std::int64_t>> items;
  std::vector<std::string> names;
  const auto chunk = static_cast<std::size_t>(o.chunk);
  for (std::size_t at = 0; at < usable.size(); at += chunk) {
    items.emplace_back(
        usable.begin() + static_cast<std::ptrdiff_t>(at),
        usable.begin() + static_cast<std::ptrdiff_t>(std::min(usable.size(), at + chunk)));
    names.push_back(fmt::format("chunk {} of epoch {}", items.size() - 1, e));
  }
  ep->items = std::make_shared<ImageItems>(t.images, std::move(items), std::move(names));
  return ep;
}

// The loss of teacher item i of a batch (`f`: its rows' features): both teachers on each of its
// bags, averaged. Rows are the item's images in order, less any the loader could not decode.
at::Tensor teacher_loss(MilNetImpl& net, const Epoch& ep, const data::Batch& b, std::int64_t i,
                        const at::Tensor& f) {
  const std::int64_t first = b.offsets[static_cast<std::size_t>(i)];
  const auto index = static_cast<std::size_t>(b.indices[static_cast<std::size_t>(i)]);
  const std::vector<std::int64_t>& expected = ep.items->item(static_cast<std::int64_t>(index));
  std::vector<std::vector<std::int64_t>> bag_rows(ep.bag_label[index].size());
  std::size_t at = 0;
  for (std::int64_t r = 0; r < f.size(0); ++r) {
    const std::int64_t g = ep.items->image_of(b.ids[static_cast<std::size_t>(first + r)]);
    while (at < expected.size() && expected[at] != g) ++at;
    ENDOKED_CHECK(at < expected.size(), "mil: batch row ", r, " is not an image of item ", index);
    bag_rows[static_cast<std::size_t>(ep.bag_of[index][at++])].push_back(r);
  }
  at::Tensor loss = 0 * net.student->forward(f).sum();  // every parameter gets a gradient
  std::int64_t bags = 0;
  for (std::size_t k = 0; k < bag_rows.size(); ++k) {
    if (bag_rows[k].empty()) continue;
    const at::Tensor x = f.index_select(0, torch::tensor(bag_rows[k], torch::kLong));
    const double y = ep.bag_label[index][k];
    loss = loss + net.attention->loss(net.attention->forward(x), y) +
           net.dsmil->loss(net.dsmil->forward(x), y);
    ++bags;
  }
  return bags > 0 ? loss / static_cast<double>(bags) : loss;
}

// The loss of student item i of a batch: weighted soft BCE against the fused teacher scores.
at::Tensor student_loss(MilNetImpl& net, const Epoch& ep, const data::Batch& b, std::int64_t i,
                        const at::Tensor& f, const MilOptions& o) {
  const std::int64_t first = b.offsets[static_cast<std::size_t>(i)], rows = f.size(0);
  std::vector<float> t(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    t[static_cast<std::size_t>(r)] = ep.target[static_cast<std::size_t>(
        ep.items->image_of(b.ids[static_cast<std::size_t>(first + r)]))];
  const at::Tensor targets = torch::from_blob(t.data(), {rows}, torch::kFloat).clone();
  return vision::weighted_soft_bce(net.student->forward(f), targets, o.positive_weight,
                                   o.negative_weight) +
         0 * (net.attention->forward(f).bag_logit + net.dsmil->forward(f).bag_logit);
}

}  // namespace

json run_mil(dist::Communicator& comm, const MilOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "mil.store is empty: name the record store");
  ENDOKED_CHECK(!o.labels.empty(), "mil.labels is empty: name the labels sidecar (endoked label)");
  ENDOKED_CHECK(o.image_size >= 64, "mil.image_size must be ≥ 64, got ", o.image_size);
  ENDOKED_CHECK(
      o.max_images >= 1 && o.items_per_step >= 1 && o.group >= 1 && o.chunk >= 1 && o.threads >= 1,
      "mil.max_images, items_per_step, group, chunk and threads must be ≥ 1");
  ENDOKED_CHECK(o.teacher_weights.size() == 2 && o.teacher_weights[0] >= 0 &&
                    o.teacher_weights[1] >= 0 && o.teacher_weights[0] + o.teacher_weights[1] > 0,
                "mil.teacher_weights must be two weights ≥ 0, not both 0");
  ENDOKED_CHECK(o.positive_weight > 0 && o.negative_weight > 0,
                "mil.positive_weight and negative_weight must be > 0 (a zero weight teaches the "
                "student nothing about that class)");
  ENDOKED_CHECK(
      o.trainer.epochs >= 2 && o.trainer.epochs % 2 == 0,
      "mil.trainer.epochs must be even and ≥ 2 (teacher and student epochs alternate), got ",
      o.trainer.epochs);
  ENDOKED_CHECK(o.trainer.eval_every == 1,
                "mil.trainer.eval_every must be 1: each epoch's scores feed the next epoch");
  ENDOKED_CHECK(o.select.negative_fraction >= 0 && o.select.negative_fraction <= 1,
                "mil.select.negative_fraction must be in [0, 1]");
  const int uncertain = policy_label(o.uncertain, "uncertain");
  const int not_mentioned = policy_label(o.not_mentioned, "not_mentioned");
  data::cap_library_threads(o.threads);

  std::vector<std::string> inputs = {o.store, o.labels};
  if (!o.truth.empty()) inputs.push_back(o.truth);
  const data::Manifest in = data::Manifest::load(o.store);
  const data::Manifest labels_manifest = data::Manifest::load(o.labels);
  const std::string key = engine::resume_key(
      config::to_yaml(o), in.content_sha256() + labels_manifest.content_sha256());
  engine::begin_outputs(comm, {{o.output, "scores"}}, o.overwrite, inputs, key);
  const Corpus c =
      load_corpus(o.store, o.labels, uncertain, not_mentioned, o.truth, o.truth_column);
  data::DatasetOptions image_options;
  image_options.store = o.store;
  const std::shared_ptr<const data::Dataset> images = data::make_dataset(image_options);

  std::vector<std::int64_t> train, positives, negatives;
  for (std::int64_t e = 0; e < c.exams(); ++e) {
    const int l = c.label[static_cast<std::size_t>(e)];
    if (l < 0) continue;
    train.push_back(e);
    (l == 1 ? positives : negatives).push_back(e);
  }
  ENDOKED_CHECK(!positives.empty() && !negatives.empty(),
                "mil: training needs positive and negative exams; '", o.labels, "' gives ",
                positives.size(), " positive and ", negatives.size(), " negative (",
                c.exams() - static_cast<std::int64_t>(train.size()), " excluded: uncertain ",
                o.uncertain, ", not mentioned ", o.not_mentioned, ")");
  const std::vector<std::int64_t> train_images = images_of(c, train);
  log::info("mil: {} exams ({} positive, {} negative, {} excluded), {} training images, {} rank(s)",
            c.exams(), positives.size(), negatives.size(),
            c.exams() - static_cast<std::int64_t>(train.size()), train_images.size(), comm.size());

  torch::manual_seed(o.seed);
  MilNet net(o.model);
  load_mil_weights(*net, o.model);
  ENDOKED_CHECK(o.optimizer == "adam" || o.optimizer == "sgd",
                "mil.optimizer must be adam or sgd, got '", o.optimizer, "'");
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (o.optimizer == "adam")
    optimizer = std::make_unique<torch::optim::Adam>(
        net->parameters(),
        torch::optim::AdamOptions(o.trainer.lr_schedule.lr).weight_decay(o.weight_decay));
  else
    optimizer = std::make_unique<torch::optim::SGD>(
        net->parameters(), torch::optim::SGDOptions(o.trainer.lr_schedule.lr)
                               .momentum(0.9)
                               .weight_decay(o.weight_decay));

  engine::TrainerOptions to = o.trainer;
  // Default: one checkpoint directory per config and inputs, so a rerun of the same run resumes
  // and a changed config or corpus starts afresh.
  if (to.checkpoint.dir.empty())
    to.checkpoint.dir = run.path() + "/checkpoints/mil-" + key.substr(0, 12);
  const std::string ckpt = to.checkpoint.dir;
  const bool resuming = to.resume && fs::exists(ckpt + "/latest");
  if (comm.is_root() && !resuming && fs::exists(ckpt)) {
    for (const auto& f : fs::directory_iterator(ckpt))  // an earlier run's targets
      if (f.path().filename().string().rfind("mil-scores-epoch-", 0) == 0) fs::remove(f.path());
  }
  comm.barrier();
  engine::Trainer trainer(to, comm, run, config::to_yaml(o), "mil");

  // Scores after each epoch: in memory, and in the checkpoint directory for a resumed run.
  std::map<std::int64_t, Scores> scores;
  const auto scores_for = [&](std::int64_t epoch) -> const Scores& {
    auto it = scores.find(epoch);
    if (it == scores.end()) {
      const std::string path = scores_file(ckpt, epoch);
      ENDOKED_CHECK(fs::exists(path), "mil: resuming epoch ", epoch, " needs ", path,
                    " (written after epoch ", epoch - 1, "); it is missing");
      it = scores.emplace(epoch, Scores::parse(files::read_all(path), path, c.images, c.exams()))
               .first;
    }
    return it->second;
  };

  auto current = std::make_shared<Epoch>();
  const TrainingSet training{c, images, train, positives, negatives, train_images};
  const auto build_epoch = [&](std::int64_t e) {
    if (e % 2 == 1) return student_epoch(training, o, e, scores_for(e));
    const bool mining = o.mining.after_epochs >= 0 && e >= o.mining.after_epochs && e > 0;
    return teacher_epoch(training, o, e, mining ? &scores_for(e) : nullptr);
  };

  data::LoaderOptions train_loader =
      data::square_loader_options(o.image_size, o.threads, o.seed, o.augment);
  train_loader.batch_size = o.items_per_step;
  train_loader.tail = "pad";
  const engine::BatchSourceFactory source = [&](std::int64_t epoch, std::int64_t cursor) {
    current = build_epoch(epoch);
    if (current->mined_out > 0)
      log::info("mil: epoch {}: hard-positive mining left out {} easy image(s)", epoch,
                current->mined_out);
    return engine::loader_source(current->items, train_loader, comm.rank(), comm.size())(epoch,
                                                                                         cursor);
  };

  const engine::StepFn step = [&](const data::Batch& b) {
    const Epoch& ep = *current;
    std::vector<at::Tensor> losses;
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const std::int64_t first = b.offsets[static_cast<std::size_t>(i)];
      const std::int64_t rows = b.offsets[static_cast<std::size_t>(i) + 1] - first;
      if (rows == 0) continue;
      const at::Tensor f = net->features(b.images.narrow(0, first, rows));
      losses.push_back(ep.teacher ? teacher_loss(*net, ep, b, i, f)
                                  : student_loss(*net, ep, b, i, f, o));
    }
    engine::StepOutput out;
    out.loss =
        losses.empty() ? torch::zeros({}, torch::requires_grad()) : torch::stack(losses).mean();
    return out;
  };

  const engine::EvalFn eval = [&](std::int64_t epoch) {
    precise_batch_norm(comm, *net, images, train_images, o.batch_norm_images, o.chunk, o.image_size,
                       o.threads, o.seed, epoch);
    Scores s = score_exams(comm, *net, images, c, train, o.image_size, o.threads,
                           fmt::format("mil: scoring after epoch {}", epoch));
    if (comm.is_root()) {
      fs::create_directories(ckpt);
      files::atomic_write(scores_file(ckpt, epoch + 1), s.bytes());
      // A resume starts from `latest`, at most in epoch epoch + 1: older targets are not needed.
      std::error_code ignored;
      if (epoch >= 1) fs::remove(scores_file(ckpt, epoch - 1), ignored);
    }
    const json e = evaluate(c, s, train);
    scores.clear();  // only the next epoch's are needed
    scores.emplace(epoch + 1, std::move(s));
    engine::MetricSums m;
    if (comm.is_root())
      for (const auto& [k, v] : e.items())
        if (k.find("auc") != std::string::npos || k.find("_ap") != std::string::npos)
          m.add(k, v.get<double>());
    return m;
  };

  const engine::FitResult fit = trainer.fit(*net, *optimizer, source, step, eval);
  json summary = {{"epochs", fit.epochs},
                  {"steps", fit.steps},
                  {"seconds", fit.seconds},
                  {"resumed", fit.resumed},
                  {"ranks", comm.size()}};
  if (fit.preempted) {
    summary["preempted"] = true;
    return summary;
  }

  // Every exam's images (also those without a training label), then the output.
  const std::vector<std::int64_t> all = all_exams_with_images(c);
  const Scores s = score_exams(comm, *net, images, c, all, o.image_size, o.threads, "mil: scoring");
  const Range ra = range_of(s.attention, train_images), rd = range_of(s.dsmil, train_images);
  const Outputs out = make_rows(c, s, ra, rd, &o.select);
  const json e = evaluate(c, s, all);
  summary["exams"] = c.exams();
  summary["images"] = c.images;
  summary["training_exams"] = {{"positive", positives.size()}, {"negative", negatives.size()}};
  summary["selection"] = out.selection;
  for (const auto& [k, v] : e.items()) summary[k] = v;

  json model = {{"model", o.model.to_json()},
                {"image_size", o.image_size},
                {"normalisation", {{"attention", ra.to_json()}, {"dsmil", rd.to_json()}}},
                {"epochs", fit.epochs},
                {"steps", fit.steps}};
  std::map<std::string, std::string> extra;
  if (comm.is_root()) {
    const std::string tmp = data::partial_dir(o.output) + "/model.pt";
    vision::save_state_dict(vision::state_dict_from(*net), tmp);
    extra["model.json"] = model.dump(2) + "\n";
  }
  write_output(
      comm, o.output, c, out,
      engine::provenance("mil", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                                 {"input_content_sha256", in.content_sha256()},
                                 {"labels", fs::absolute(o.labels).lexically_normal().string()},
                                 {"config_sha256", sha256_hex(config::to_yaml(o))}}),
      summary, extra, run, "mil");
  log::info("mil: {} images scored;{}; localisation: {} positive, {} negative image(s) -> {}",
            c.images, fmt_metrics(e), out.positives, out.negatives, o.output);
  return summary;
}

json run_mil_score(dist::Communicator& comm, const MilScoreOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "mil_score.store is empty: name the record store to score");
  ENDOKED_CHECK(!o.checkpoint.empty(), "mil_score.checkpoint is empty: name a mil model.pt");
  ENDOKED_CHECK(o.threads >= 1, "mil_score.threads must be ≥ 1");
  const std::string model_json = (fs::path(o.checkpoint).parent_path() / "model.json").string();
  ENDOKED_CHECK(fs::exists(o.checkpoint), "mil score: no checkpoint '", o.checkpoint, "'");
  ENDOKED_CHECK(fs::exists(model_json), "mil score: '", model_json,
                "' is missing: the model's architecture is read from the model.json a mil run "
                "writes beside model.pt");
  json model;
  MilModelOptions mo;
  int size = 0;
  Range ra, rd;
  try {
    model = json::parse(files::read_all(model_json));
    mo = MilModelOptions::from_json(model.at("model"));
    size = model.at("image_size").get<int>();
    const auto& n = model.at("normalisation");
    ra = {n.at("attention").at(0).get<double>(), n.at("attention").at(1).get<double>()};
    rd = {n.at("dsmil").at(0).get<double>(), n.at("dsmil").at(1).get<double>()};
  } catch (const json::exception& e) {
    ENDOKED_FAIL("mil score: '", model_json, "' is not a mil model description: ", e.what());
  }
  data::cap_library_threads(o.threads);
  std::vector<std::string> inputs = {o.store};
  for (const auto* d : {&o.labels, &o.truth})
    if (!d->empty()) inputs.push_back(*d);
  const data::Manifest in = data::Manifest::load(o.store);
  engine::begin_outputs(comm, {{o.output, "scores"}}, o.overwrite, inputs);
  const Corpus c = load_corpus(o.store, o.labels, -1, -1, o.truth, o.truth_column);
  MilNet net(mo);
  mo.weights = o.checkpoint;
  mo.strict = true;
  load_mil_weights(*net, mo);
  data::DatasetOptions image_options;
  image_options.store = o.store;
  const std::shared_ptr<const data::Dataset> images = data::make_dataset(image_options);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::int64_t> all = all_exams_with_images(c);
  const Scores s = score_exams(comm, *net, images, c, all, size, o.threads, "mil score");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Outputs out = make_rows(c, s, ra, rd, nullptr);
  json summary = evaluate(c, s, all);
  summary["exams"] = c.exams();
  summary["images"] = c.images;
  summary["seconds"] = seconds;
  summary["images_per_s"] = seconds > 0 ? static_cast<double>(c.images) / seconds : 0.0;
  summary["ranks"] = comm.size();
  write_output(
      comm, o.output, c, out,
      engine::provenance("mil score",
                         {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                          {"input_content_sha256", in.content_sha256()},
                          {"checkpoint", fs::absolute(o.checkpoint).lexically_normal().string()}}),
      summary, {}, run, "mil score");
  log::info("mil score: {} images in {:.1f}s;{} -> {}", c.images, seconds, fmt_metrics(summary),
            o.output);
  return summary;
}

}  // namespace endoked::recipes
