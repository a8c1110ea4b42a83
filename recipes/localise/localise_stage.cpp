#include "localise_stage.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/core/seed.h"
#include "endoked/core/sha256.h"
#include "endoked/data/dataset.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/overlay.h"
#include "endoked/vision/resnet.h"
#include "endoked/vision/weights.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
namespace {

// What the stage reads: exams, the MIL scores per image, the truth boxes when given.
struct Inputs {
  std::vector<data::RecordStore::ExamSpan> spans;
  std::vector<std::int64_t> shard_exams, shard_first_exam;
  std::vector<double> score;
  std::vector<int> exam_label, selected;
  std::vector<std::vector<vision::Box>> truth;  // per image; empty without truth
  std::int64_t images = 0;
};

Inputs read_inputs(const LocaliseOptions& o) {
  Inputs in;
  data::RecordStore records(o.store);
  in.spans = records.exam_spans();
  in.images = records.image_count();
  std::int64_t first = 0;
  for (const auto& s : records.manifest().shards) {
    in.shard_exams.push_back(s.exams);
    in.shard_first_exam.push_back(first);
    first += s.exams;
  }
  data::DatasetOptions d;
  d.store = o.store;
  d.sidecars = {o.scores};
  d.label_columns = {"images/score", "images/exam_label", "images/selected"};
  const auto scored = data::make_dataset(d);
  ENDOKED_CHECK(scored->size() == in.images, "localise: scores '", o.scores, "' joins ",
                scored->size(), " images, the store has ", in.images);
  in.score.resize(static_cast<std::size_t>(in.images));
  in.exam_label.resize(in.score.size());
  in.selected.resize(in.score.size());
  for (std::int64_t g = 0; g < in.images; ++g) {
    const auto l = scored->labels(g);
    const auto k = static_cast<std::size_t>(g);
    in.score[k] = l.at("score");
    in.exam_label[k] = static_cast<int>(l.at("exam_label"));
    in.selected[k] = static_cast<int>(l.at("selected"));
  }
  if (!o.truth.empty()) {
    data::DatasetOptions t;
    t.store = o.store;
    t.sidecars = {o.truth};
    t.boxes_column = "images/boxes";
    t.pixels = false;  // the boxes alone
    const auto truth = data::make_dataset(t);
    in.truth.resize(in.score.size());
    for (std::int64_t g = 0; g < in.images; ++g) {
      const std::vector<data::RawImage> read = truth->read(g);
      for (const auto& b : read.at(0).boxes)
        in.truth[static_cast<std::size_t>(g)].push_back(
            {static_cast<int>(b.x0), static_cast<int>(b.y0), static_cast<int>(b.x1),
             static_cast<int>(b.y1)});
    }
  }
  return in;
}

// The training selection: positives, then negatives, as global image indices with targets.
struct Selection {
  std::vector<std::int64_t> images;
  std::vector<float> targets;
  std::int64_t positives = 0, negatives = 0;
};

// Sorts `images` by MIL score (descending when `high`) and keeps the first `fraction`.
void keep_fraction(std::vector<std::int64_t>& images, const std::vector<double>& score,
                   double fraction, bool high) {
  std::stable_sort(images.begin(), images.end(), [&](std::int64_t a, std::int64_t b) {
    const double x = score[static_cast<std::size_t>(a)], y = score[static_cast<std::size_t>(b)];
    return high ? x > y : x < y;
  });
  images.resize(
      static_cast<std::size_t>(std::llround(fraction * static_cast<double>(images.size()))));
  std::sort(images.begin(), images.end());
}

Selection select_images(const Inputs& in, const LocaliseSelect& s) {
  ENDOKED_CHECK(s.from == "rank" || s.from == "threshold" || s.from == "mil",
                "localise.select.from must be rank, threshold or mil, got '", s.from, "'");
  ENDOKED_CHECK(s.positive_fraction >= 0 && s.positive_fraction <= 1 && s.negative_fraction >= 0 &&
                    s.negative_fraction <= 1,
                "localise.select.positive_fraction and negative_fraction must be in [0, 1]");
  Selection out;
  std::vector<std::int64_t> positives, negatives;
  for (std::int64_t g = 0; g < in.images; ++g) {
    const auto k = static_cast<std::size_t>(g);
    if (in.score[k] < 0) continue;  // not scored (undecodable)
    if (s.from == "mil") {
      if (in.selected[k] == 1) positives.push_back(g);
      if (in.selected[k] == 0) negatives.push_back(g);
      continue;
    }
    if (in.exam_label[k] == 1 && (s.from == "rank" || in.score[k] >= s.positive_threshold))
      positives.push_back(g);
    if (in.exam_label[k] == 0) negatives.push_back(g);
  }
  if (s.from == "rank") keep_fraction(positives, in.score, s.positive_fraction, true);
  if (s.from != "mil") keep_fraction(negatives, in.score, s.negative_fraction, false);
  out.positives = static_cast<std::int64_t>(positives.size());
  out.negatives = static_cast<std::int64_t>(negatives.size());
  out.images = positives;
  out.targets.assign(out.images.size(), 1.0F);
  out.images.insert(out.images.end(), negatives.begin(), negatives.end());
  out.targets.resize(out.images.size(), 0.0F);
  return out;
}

data::LoaderOptions loader_options(const LocaliseOptions& o, bool augment) {
  data::LoaderOptions lo = data::square_loader_options(o.image_size, o.threads, o.seed, augment);
  lo.batch_size = o.batch_size;
  return lo;
}

vision::ResNet make_model(const LocaliseModel& m) {
  vision::ResNet net = vision::make_resnet(m.arch, 1, m.width, m.output_stride);
  if (m.weights.empty()) return net;
  vision::StateDict state = vision::read_state_dict(m.weights), keep;
  const auto ours = net->named_parameters();
  std::int64_t dropped = 0;
  for (auto& [name, t] : state) {
    // torchvision's ImageNet classifier does not fit the one-logit head: leave it out.
    if (name.rfind("fc.", 0) == 0 && ours.contains(name) && ours[name].sizes() != t.sizes()) {
      ++dropped;
      continue;
    }
    keep.emplace_back(name, t);
  }
  const vision::LoadReport r = vision::load_state_dict(*net, keep, false, m.weights);
  ENDOKED_CHECK(r.mismatched.empty() && r.loaded > 0, "localise.model.weights '", m.weights,
                "' does not fit localise.model (arch ", m.arch, ", width ", m.width,
                "): ", r.loaded, " tensor(s) matched; ", r.describe());
  log::info("localise: weights {}: {} tensor(s) loaded, {} classifier tensor(s) left out",
            m.weights, r.loaded, dropped);
  return net;
}

// The CAMs of a batch of normalised images [N, 3, S, S] at the model's resolution, not
// normalised: [N, h, w].
torch::Tensor cams_of(vision::ResNetImpl& net, const torch::Tensor& w, const std::string& method,
                      const torch::Tensor& x) {
  if (method == "cam") {
    torch::NoGradGuard no_grad;
    return torch::relu(torch::einsum("nchw,c->nhw", {net.features(x), w}));
  }
  torch::AutoGradMode grad(true);
  const torch::Tensor f = net.features(x).detach().requires_grad_(true);
  const torch::Tensor logits = (f.mean({2, 3}) * w).sum();  // each image's logit, less the bias
  const torch::Tensor g = torch::autograd::grad({logits}, {f})[0];
  std::vector<torch::Tensor> maps;
  for (int64_t i = 0; i < x.size(0); ++i)
    maps.push_back(vision::grad_cam_plus_plus(f[i].detach(), g[i]));
  return torch::stack(maps);
}

struct TruthCounts {
  std::int64_t accepted = 0, hits = 0, candidates = 0, candidates_with_polyp = 0;
  double iou_sum = 0;
  void add(const json& j) {
    accepted += j.value("accepted", 0);
    hits += j.value("hits", 0);
    candidates += j.value("candidates", 0);
    candidates_with_polyp += j.value("candidates_with_polyp", 0);
    iou_sum += j.value("iou_sum", 0.0);
  }
  json to_json() const {
    return {{"accepted", accepted},
            {"hits", hits},
            {"candidates", candidates},
            {"candidates_with_polyp", candidates_with_polyp},
            {"iou_sum", iou_sum}};
  }
};

// Shard s: CAMs and boxes of its candidates; writes the shard of the boxes sidecar.
json box_shard(const LocaliseOptions& o, const Inputs& in, vision::ResNetImpl& net,
               const std::shared_ptr<const data::Dataset>& images,
               const std::vector<bool>& candidate, int s, const std::string& partial,
               Progress& progress) {
  const std::int64_t e0 = in.shard_first_exam[static_cast<std::size_t>(s)];
  const std::int64_t e1 = e0 + in.shard_exams[static_cast<std::size_t>(s)];
  std::vector<std::int64_t> candidates;
  for (std::int64_t e = e0; e < e1; ++e) {
    const auto& span = in.spans[static_cast<std::size_t>(e)];
    for (std::int64_t g = span.first_image; g < span.first_image + span.image_count; ++g)
      if (candidate[static_cast<std::size_t>(g)]) candidates.push_back(g);
  }
  std::map<std::int64_t, data::BoxesRow> rows;
  std::map<std::int64_t, vision::Box> candidate_box;  // the largest component, also when rejected
  data::RecordStore records(o.store);
  const torch::Tensor w = net.named_parameters()["fc.weight"].detach()[0];
  auto subset = std::make_shared<data::ImageSubset>(images, candidates, std::vector<float>{});
  data::LoaderOptions lo = loader_options(o, false);
  lo.threads = 1;  // one shard per rank at a time; LibTorch has the rest
  data::Loader loader(subset, lo, 0, 0, 1);
  data::Batch b;
  while (loader.next(b)) {
    std::vector<std::int64_t> rows_in_batch, image_of_row;
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const std::int64_t row = b.offsets[static_cast<std::size_t>(i)];
      if (b.offsets[static_cast<std::size_t>(i) + 1] == row) continue;  // undecodable
      rows_in_batch.push_back(row);
      image_of_row.push_back(subset->image(b.indices[static_cast<std::size_t>(i)]));
    }
    if (rows_in_batch.empty()) continue;
    const torch::Tensor cams =
        vision::multi_scale_cam(
            [&](const torch::Tensor& x) { return cams_of(net, w, o.cam.method, x); },
            b.images.index_select(0, torch::tensor(rows_in_batch, torch::kLong)), o.cam.scales,
            o.cam.flips)
            .to(torch::kFloat)
            .contiguous();
    for (std::size_t k = 0; k < image_of_row.size(); ++k) {
      const std::int64_t g = image_of_row[k];
      const data::ImageRecord rec = records.image(g, false);
      const torch::Tensor one = cams[static_cast<std::int64_t>(k)];
      cv::Mat cam(static_cast<int>(one.size(0)), static_cast<int>(one.size(1)), CV_32FC1,
                  one.data_ptr<float>());
      cv::Mat full;
      cv::resize(cam, full, cv::Size(rec.width, rec.height), 0, 0, cv::INTER_LINEAR);
      full = cv::min(cv::max(full, 0.0), 1.0);
      const torch::Tensor ft = torch::from_blob(full.data, {full.rows, full.cols}, torch::kFloat);
      const vision::CamBox box = vision::box_from_cam(ft, o.box);
      data::BoxesRow r;
      r.status = box.accepted ? "accepted" : box.reject;
      if (box.accepted) {
        r.boxes = json::array({json::array({box.x0, box.y0, box.x1, box.y1, box.score})}).dump();
        r.count = 1;
      }
      r.cam_score = box.score;
      r.area = box.area;
      r.components = box.components;
      if (o.save_cams) r.cam.bytes = vision::encode_map_png(full);
      if (box.reject != "no_foreground")
        candidate_box[g] = {box.x0, box.y0, box.x1, box.y1, box.score};
      rows[g] = std::move(r);
      progress.add();
    }
  }

  data::ShardWriter sw(partial, s, "boxes");
  data::ImageSidecarWriter<data::BoxesRow> out(sw);
  data::TableWriter<data::BoxRejectRow> rejects(sw, "rejects");
  rejects.declare();  // an empty table when nothing was rejected
  json counts = json::object();
  json samples = {{"accepted", json::array()}, {"rejected", json::array()}};
  TruthCounts t;
  std::int64_t row_in_shard = 0;
  for (std::int64_t e = e0; e < e1; ++e) {
    const auto& span = in.spans[static_cast<std::size_t>(e)];
    std::vector<data::BoxesRow> exam_rows(static_cast<std::size_t>(span.image_count));
    for (std::int64_t k = 0; k < span.image_count; ++k) {
      const std::int64_t g = span.first_image + k;
      const std::int64_t row = row_in_shard++;
      auto it = rows.find(g);
      if (it == rows.end()) continue;
      data::BoxesRow& r = exam_rows[static_cast<std::size_t>(k)];
      r = std::move(it->second);
      counts[r.status] = counts.value(r.status, 0) + 1;
      const auto found = candidate_box.find(g);
      const json box = found == candidate_box.end()
                           ? json::array()
                           : json::array({found->second.x0, found->second.y0, found->second.x1,
                                          found->second.y1});
      auto& sample = samples[r.status == "accepted" ? "accepted" : "rejected"];
      if (static_cast<int>(sample.size()) < o.montage) sample.push_back({g, row, box, r.status});
      if (r.status != "accepted") {
        data::BoxRejectRow j;
        j.exam = e - e0;
        j.position = k;
        j.reason = r.status;
        j.box = box.dump();
        j.area = r.area;
        j.components = r.components;
        rejects.add(j);
      }
      if (in.truth.empty()) continue;
      const auto& truth = in.truth[static_cast<std::size_t>(g)];
      ++t.candidates;
      if (!truth.empty()) ++t.candidates_with_polyp;
      if (r.status != "accepted") continue;
      double best = 0;
      for (const auto& tb : truth) best = std::max(best, vision::box_iou(found->second, tb));
      ++t.accepted;
      t.iou_sum += best;
      if (best >= 0.5) ++t.hits;
    }
    out.add_exam(span.id, std::move(exam_rows));
  }
  return {{"info", sw.close().to_json()},
          {"counts", counts},
          {"samples", samples},
          {"truth", t.to_json()}};
}

// montage-boxes.png: sampled accepted and rejected candidates with their CAM and box.
void write_montage(const LocaliseOptions& o, const std::vector<json>& shards,
                   const data::Manifest& m, const std::shared_ptr<const data::Dataset>& images,
                   const RunDir& run) {
  std::vector<cv::Mat> tiles;
  std::vector<std::string> captions;
  for (const char* kind : {"accepted", "rejected"}) {
    int taken = 0;
    for (std::size_t s = 0; s < shards.size() && taken < o.montage; ++s) {
      if (shards[s]["samples"][kind].empty()) continue;
      data::ShardReader out(o.output + "/" + m.shards[s].file);
      for (const auto& item : shards[s]["samples"][kind]) {
        if (taken++ >= o.montage) break;
        const auto raw = images->read(item[0].get<std::int64_t>());
        const cv::Mat image = data::decode_rgb(raw.at(0).bytes, 0, 0);
        cv::Mat cam = vision::decode_cam(out.blob("images", "cam", item[1].get<std::int64_t>()),
                                         "CAM of '" + raw.at(0).id + "'");
        if (!cam.empty() && cam.size() != image.size()) cv::resize(cam, cam, image.size());
        std::vector<vision::Box> boxes;
        if (item[2].size() == 4)
          boxes.push_back({item[2][0].get<int>(), item[2][1].get<int>(), item[2][2].get<int>(),
                           item[2][3].get<int>()});
        tiles.push_back(vision::overlay(image, cam, boxes, cv::Mat()));
        captions.push_back(item[3].get<std::string>());
      }
    }
  }
  const std::string png = vision::montage_png(tiles, captions);
  if (!png.empty()) files::atomic_write(run.path() + "/montage-boxes.png", png);
}

}  // namespace

json run_localise(dist::Communicator& comm, const LocaliseOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "localise.store is empty: name the record store");
  ENDOKED_CHECK(!o.scores.empty(), "localise.scores is empty: name the mil stage's scores sidecar");
  ENDOKED_CHECK(o.image_size >= 32 && o.batch_size >= 1 && o.threads >= 1 && o.montage >= 0,
                "localise.image_size must be ≥ 32, batch_size and threads ≥ 1, montage ≥ 0");
  ENDOKED_CHECK(o.cam.method == "cam" || o.cam.method == "gradcam++",
                "localise.cam.method must be cam or gradcam++, got '", o.cam.method, "'");
  data::cap_library_threads(o.threads);
  const data::Manifest in_m = data::Manifest::load(o.store);
  const data::Manifest scores_m = data::Manifest::load(o.scores);
  ENDOKED_CHECK(scores_m.kind == "scores", "localise.scores '", o.scores, "' is a ", scores_m.kind,
                " store, not a scores sidecar (endoked mil)");
  std::vector<std::string> inputs = {o.store, o.scores};
  if (!o.truth.empty()) inputs.push_back(o.truth);
  const std::string key =
      engine::resume_key(config::to_yaml(o), in_m.content_sha256() + scores_m.content_sha256());
  engine::begin_outputs(comm, {{o.output, "boxes"}}, o.overwrite, inputs);
  const Inputs in = read_inputs(o);
  const Selection sel = select_images(in, o.select);
  ENDOKED_CHECK(sel.positives > 0 && sel.negatives > 0, "localise: the selection has ",
                sel.positives, " positive and ", sel.negatives,
                " negative image(s); both are needed (lower localise.select.positive_threshold, "
                "raise negative_fraction, or check the mil run)");
  log::info("localise: {} images; training on {} positive and {} negative image(s), {} rank(s)",
            in.images, sel.positives, sel.negatives, comm.size());

  data::DatasetOptions image_options;
  image_options.store = o.store;
  const std::shared_ptr<const data::Dataset> images = data::make_dataset(image_options);
  auto train = std::make_shared<data::ImageSubset>(images, sel.images, sel.targets);
  torch::manual_seed(o.seed);
  vision::ResNet net = make_model(o.model);
  torch::optim::Adam optimizer(
      net->parameters(), torch::optim::AdamOptions(o.trainer.lr_schedule.lr).weight_decay(1e-4));
  engine::TrainerOptions to = o.trainer;
  if (to.checkpoint.dir.empty())
    to.checkpoint.dir = run.path() + "/checkpoints/localise-" + key.substr(0, 12);
  engine::Trainer trainer(to, comm, run, config::to_yaml(o), "localise");
  const auto pos_weight =
      torch::tensor({static_cast<float>(sel.negatives) / static_cast<float>(sel.positives)});
  const engine::StepFn step = [&](const data::Batch& b) {
    engine::StepOutput out;
    std::vector<std::int64_t> rows;
    std::vector<float> targets;
    const auto t = b.labels.at("target").contiguous();
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const std::int64_t r = b.offsets[static_cast<std::size_t>(i)];
      if (b.offsets[static_cast<std::size_t>(i) + 1] == r) continue;
      rows.push_back(r);
      targets.push_back(t[i].item<float>());
    }
    if (rows.empty()) {
      out.loss = 0 * net->forward(torch::zeros({2, 3, o.image_size, o.image_size})).sum();
      return out;
    }
    const auto x = b.images.index_select(0, torch::tensor(rows, torch::kLong));
    const auto logits = net->forward(x).squeeze(1);
    const auto y = torch::tensor(targets);
    out.loss = torch::nn::functional::binary_cross_entropy_with_logits(
        logits, y,
        torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight));
    out.metrics["accuracy"] =
        ((logits > 0).to(torch::kFloat) == y).to(torch::kFloat).mean().item<double>();
    return out;
  };
  data::LoaderOptions train_loader = loader_options(o, o.augment);
  train_loader.tail = "pad";
  const engine::FitResult fit = trainer.fit(
      *net, optimizer, engine::loader_source(train, train_loader, comm.rank(), comm.size()), step);
  json summary = {{"epochs", fit.epochs},
                  {"steps", fit.steps},
                  {"seconds", fit.seconds},
                  {"resumed", fit.resumed},
                  {"ranks", comm.size()},
                  {"last_loss", fit.last_loss},
                  {"selection", {{"positives", sel.positives}, {"negatives", sel.negatives}}}};
  if (fit.preempted) {
    summary["preempted"] = true;
    return summary;
  }

  // CAMs and boxes, shard by shard.
  net->eval();
  std::vector<bool> candidate(static_cast<std::size_t>(in.images), false);
  for (std::int64_t g = 0; g < in.images; ++g) {
    const auto k = static_cast<std::size_t>(g);
    if (o.candidate_threshold >= 0)
      candidate[k] = in.exam_label[k] == 1 && in.score[k] >= o.candidate_threshold;
  }
  if (o.candidate_threshold < 0)
    for (std::int64_t p = 0; p < sel.positives; ++p)
      candidate[static_cast<std::size_t>(sel.images[static_cast<std::size_t>(p)])] = true;
  const std::string partial = data::partial_dir(o.output);
  engine::ShardedWork w;
  w.stage = "localise";
  w.shards = static_cast<int>(in.shard_exams.size());
  w.unit = "images";
  w.work = [&](int s, Progress& progress) {
    return box_shard(o, in, *net, images, candidate, s, partial, progress);
  };
  const engine::ShardedResult done = engine::run_shards(comm, w);
  data::Manifest m;
  m.kind = "boxes";
  m.columns = data::image_sidecar_layout<data::BoxesRow>();
  for (auto& c : data::layout<data::BoxRejectRow>("rejects")) m.columns.push_back(std::move(c));
  json counts = json::object();
  TruthCounts t;
  for (const auto& sh : done.shards) {
    m.shards.push_back(data::ShardInfo::from_json(sh["info"]));
    for (const auto& [k, v] : sh["counts"].items())
      counts[k] = counts.value(k, 0) + v.get<std::int64_t>();
    t.add(sh["truth"]);
  }
  std::int64_t candidates = 0;
  for (const auto& [k, v] : counts.items()) candidates += v.get<std::int64_t>();
  if (o.candidate_threshold >= 0) summary["candidate_threshold"] = o.candidate_threshold;
  summary["candidates"] = candidates;
  summary["accepted"] = counts.value("accepted", 0);
  json rejects = json::object();
  for (const auto& [k, v] : counts.items())
    if (k != "accepted") rejects[k] = v;
  summary["rejects"] = rejects;
  summary["boxing_seconds"] = done.seconds;
  if (!in.truth.empty()) {
    summary["truth"] = {
        {"hit_rate", t.accepted > 0 ? static_cast<double>(t.hits) / t.accepted : 0.0},
        {"mean_iou", t.accepted > 0 ? t.iou_sum / t.accepted : 0.0},
        {"hits", t.hits},
        {"candidates_with_polyp", t.candidates_with_polyp}};
  }
  const json model = {
      {"arch", o.model.arch},
      {"width", o.model.width},
      {"output_stride", o.model.output_stride},
      {"image_size", o.image_size},
      {"cam", {{"method", o.cam.method}, {"scales", o.cam.scales}, {"flips", o.cam.flips}}},
      {"steps", fit.steps}};
  engine::commit_on_root(comm, [&] {
    vision::save_state_dict(vision::state_dict_from(*net), partial + "/model.pt");
    files::atomic_write(partial + "/model.json", model.dump(2) + "\n");
    m.provenance = engine::provenance(
        "localise", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                     {"input_content_sha256", in_m.content_sha256()},
                     {"scores", fs::absolute(o.scores).lexically_normal().string()},
                     {"model", model},
                     {"box_rules", config::to_yaml(o.box)},
                     {"config_sha256", sha256_hex(config::to_yaml(o))}});
    m.summary = summary;
    data::commit_store(o.output, m);
    if (o.montage > 0) write_montage(o, done.shards, m, images, run);
    run.log_metrics(json{{"stage", "localise"}, {"summary", summary}});
  });
  log::info("localise: {} candidate(s), {} box(es) accepted, rejects {} -> {}", candidates,
            summary["accepted"].get<std::int64_t>(), rejects.dump(), o.output);
  return summary;
}

}  // namespace endoked::recipes
