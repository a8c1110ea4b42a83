#pragma once
// `endoked mil`: multiple-instance learning over exams, as EndoKED does it (WENO, Qu et al.
// NeurIPS 2022, with two teachers). A bag is an exam's images; its label is the report's
// (labels sidecar, exams/positive).
//
// Epochs alternate, on engine::Trainer (data parallel, checkpoints, resume, preemption):
//   even epochs — the teachers: gated attention-MIL (bag BCE) and DSMIL (0.5 bag BCE + 0.5 max
//     instance BCE) on bags of at most `max_images` images, positive and negative bags drawn
//     equally often (`balance`). An item is a group of `group` bags: one encoder forward, so
//     batch norm sees positive and negative exams together (a bag normalised alone loses what
//     its images share — a bag whose every image shows a polyp looks like a clean one); the
//     heads then see each bag. After `mining.after_epochs`, hard-positive mining: in a positive
//     bag each image the student already scores ≥ mining.threshold is left out with
//     probability mining.drop (one such image always stays), so the teachers must find the
//     harder positives.
//   odd epochs — the student: an instance classifier on chunks of `chunk` images, trained with
//     a weighted soft BCE on the fused teacher scores: each teacher's instance scores
//     (attention logit; DSMIL instance logit) min–max normalised over the epoch's training
//     images, fused with teacher_weights, forced to 0 in negative exams.
// After each epoch the encoder's batch-norm statistics are recomputed over training images
// (`batch_norm_images`) and every training image is scored (collective, no gradient, per exam);
// those scores feed the next epoch and are kept in the checkpoint directory
// (mil-scores-epoch-N.bin), so a run resumed mid-epoch trains on the same targets. Items are
// fixed before the loader deals them out, so a step computes the same whatever the world size
// (2 ranks × 2 items = 1 rank × 4, to rounding). The default checkpoint directory is
// <run dir>/checkpoints/mil-<hash of config and inputs>: rerunning resumes, a changed config or
// corpus starts afresh.
//
// Output (`output`, a "scores" sidecar store with the record store's shard layout): per image
// the student probability (score), each teacher's normalised score, the attention weight, the
// rank within its exam, the exam's label, and `selected` — 1 for a localisation positive
// (score ≥ select.positive_threshold in a positive exam), 0 for a localisation negative (the
// lowest select.negative_fraction of negative exams' images), −1 otherwise; model.pt (torch.save
// state dict) and model.json beside. Evaluation: exam AUC (max-pooled student; each teacher's
// bag probability) against the report labels, image AUC / AP against `truth` when given.
// `endoked mil score`: scores any store with a trained model.pt, on N ranks.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"
#include "endoked/engine/trainer.h"
#include "mil_model.h"

namespace endoked::recipes {

struct MilMining {
  std::int64_t after_epochs = 4;
  double threshold = 0.5;
  double drop = 0.5;
  template <class V>
  void visit(V& v) {
    v("after_epochs", after_epochs,
      "hard-positive mining starts with the first teacher epoch at or after this epoch (-1: "
      "never)");
    v("threshold", threshold, "student probability above which a positive bag's image is 'easy'");
    v("drop", drop, "chance that an easy image is left out of the teachers' bag");
  }
};

struct MilSelect {
  double positive_threshold = 0.8;
  double negative_fraction = 0.1;
  template <class V>
  void visit(V& v) {
    v("positive_threshold", positive_threshold,
      "localisation positives: student score at least this, in positive exams");
    v("negative_fraction", negative_fraction,
      "localisation negatives: this fraction of negative exams' images, lowest scores first");
  }
};

struct MilOptions {
  std::string store;
  std::string labels;
  std::string truth;
  std::string truth_column = "images/has_polyp";
  std::string output = "mil";
  std::string uncertain = "exclude";
  std::string not_mentioned = "exclude";
  int image_size = 64;
  int max_images = 16;
  bool balance = true;
  bool augment = true;
  int items_per_step = 1;
  int group = 4;
  int chunk = 16;
  std::int64_t batch_norm_images = 2048;
  int threads = 2;
  std::uint64_t seed = 0;
  std::vector<double> teacher_weights = {0.5, 0.5};
  double positive_weight = 0.5;
  double negative_weight = 0.5;
  std::string optimizer = "adam";
  double weight_decay = 1e-4;
  bool overwrite = false;
  MilMining mining;
  MilSelect select;
  MilModelOptions model;
  engine::TrainerOptions trainer;

  MilOptions() {
    trainer.epochs = 16;
    trainer.log_every = 5;
    trainer.checkpoint.dir = "";
    trainer.lr_schedule.lr = 1e-3;
    trainer.lr_schedule.kind = "cosine";
  }

  template <class V>
  void visit(V& v) {
    v("store", store, "record store (exams and their images)");
    v("labels", labels, "labels sidecar (endoked label): exams/positive is the bag label");
    v("truth", truth,
      "optional: image truth for evaluation: a sidecar store with truth_column (the synthetic "
      "truth), or a CSV with columns image (the source path, as in the store) and the "
      "truth_column's name");
    v("truth_column", truth_column, "truth: the 0/1 image column");
    v("output", output, "scores sidecar store to write (with model.pt, model.json)");
    v("uncertain", uncertain, "exams labelled uncertain: exclude | positive | negative");
    v("not_mentioned", not_mentioned,
      "exams with no polyp statement: exclude | positive | negative");
    v("image_size", image_size, "images are resized to image_size × image_size");
    v("max_images", max_images, "teacher bags: at most this many images (a random subset)");
    v("balance", balance, "teacher epochs draw positive and negative bags equally often");
    v("augment", augment, "random horizontal and vertical flips while training");
    v("items_per_step", items_per_step,
      "items per rank per optimizer step: groups of bags (teacher epochs) or chunks (student "
      "epochs)");
    v("group", group,
      "teacher epochs: bags per group — one encoder forward, one batch-norm batch (a bag alone "
      "would normalise away what its images share); positive and negative alternate when "
      "balanced");
    v("chunk", chunk, "student epochs: images per chunk (one forward, one batch-norm batch)");
    v("batch_norm_images", batch_norm_images,
      "before scoring, the encoder's batch-norm statistics are recomputed over this many "
      "training images in chunks (0: keep the running averages)");
    v("threads", threads, "decode threads and LibTorch threads per rank");
    v("seed", seed, "initialisation, order, subsets and mining seed");
    v("teacher_weights", teacher_weights, "fusion weights of [attention-MIL, DSMIL] scores");
    v("positive_weight", positive_weight, "student loss: weight of the positive term (> 0)");
    v("negative_weight", negative_weight, "student loss: weight of the negative term (> 0)");
    v("optimizer", optimizer, "adam | sgd (momentum 0.9); the rate is trainer.lr_schedule.lr");
    v("weight_decay", weight_decay, "L2 weight decay");
    v("overwrite", overwrite, "replace an existing output (only once the new one is complete)");
    v("mining", mining);
    v("select", select);
    v("model", model);
    v("trainer", trainer);
  }
};

/// Collective. Trains, writes the output store and returns the summary (counts, AUCs).
nlohmann::json run_mil(dist::Communicator& comm, const MilOptions& options, const RunDir& run);

struct MilScoreOptions {
  std::string store;
  std::string checkpoint;
  std::string output = "mil-scores";
  std::string labels;
  std::string truth;
  std::string truth_column = "images/has_polyp";
  int threads = 2;
  bool overwrite = false;
  template <class V>
  void visit(V& v) {
    v("store", store, "record store to score");
    v("checkpoint", checkpoint, "model.pt of a mil output (model.json beside it)");
    v("output", output, "scores sidecar store to write");
    v("labels", labels, "optional labels sidecar: exam AUC and exam_label");
    v("truth", truth, "optional truth sidecar or CSV (image, has_polyp): image AUC / AP");
    v("truth_column", truth_column, "truth: the 0/1 image column");
    v("threads", threads, "decode threads and LibTorch threads per rank");
    v("overwrite", overwrite, "replace an existing output (only once the new one is complete)");
  }
};

/// Collective. Scores every image of `store`; writes the sidecar; returns the evaluation.
nlohmann::json run_mil_score(dist::Communicator& comm, const MilScoreOptions& options,
                             const RunDir& run);

}  // namespace endoked::recipes
