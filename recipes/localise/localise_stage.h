#pragma once
// `endoked localise`: boxes for the images the MIL stage found polyps in, as EndoKED does it.
//
// 1. Selection, from the MIL scores sidecar: positives are the highest-scored
//    select.positive_fraction of positive exams' images (select.from: rank — it does not depend
//    on how the student's probabilities are calibrated, which varies with training length), or
//    those scoring at least select.positive_threshold (from: threshold); negatives the
//    lowest-scored select.negative_fraction of negative exams' images; or the MIL stage's own
//    `selected` column (from: mil).
// 2. A CAM-friendly binary classifier (a vision ResNet: global average pooling and a linear
//    head; output stride 16 by default, so the CAM is twice as fine as the published stride)
//    trained on that selection on engine::Trainer — data parallel, checkpoints, resume,
//    preemption; positives weighted by negatives/positives in the BCE. The default checkpoint
//    directory is <run dir>/checkpoints/localise-<hash of config and inputs>.
// 3. Candidates — the selected positives, or with `candidate_threshold` ≥ 0 every image of a
//    positive exam whose MIL score is at least that — get a CAM (cam.method: cam | gradcam++,
//    averaged over cam.scales with flips, resized to the original image, normalised to [0, 1]) and
//    a box from it (vision::box_from_cam with the `box` rules; each reject counted by reason).
//    Shard s of the store is boxed by rank s % world, so the output is the same on any number of
//    ranks.
//
// Output (`output`, a "boxes" sidecar with the record store's shard layout): per image its
// status (accepted | a reject reason | not_candidate), the accepted box with its CAM score, the
// largest component's area and the component count, the CAM as an 8-bit PNG (save_cams), plus a
// /rejects table per shard; model.pt and model.json beside; montage-boxes.png in the run
// directory (CAM and box of sampled accepted and rejected candidates). With `truth` (a synthetic
// truth sidecar: images/boxes, images/has_polyp): the hit rate (accepted boxes with IoU ≥ 0.5
// against a true box), mean best IoU, and how many candidates truly show a polyp.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"
#include "endoked/engine/trainer.h"
#include "endoked/vision/cam.h"

namespace endoked::recipes {

struct LocaliseSelect {
  std::string from = "rank";
  double positive_fraction = 0.35;
  double positive_threshold = 0.5;
  double negative_fraction = 0.2;
  template <class V>
  void visit(V& v) {
    v("from", from,
      "rank (positive_fraction) | threshold (positive_threshold) | mil (the scores sidecar's "
      "selected column); negatives: negative_fraction (rank, threshold)");
    v("positive_fraction", positive_fraction,
      "rank: positives are this fraction of positive exams' images, highest MIL scores first");
    v("positive_threshold", positive_threshold,
      "positives: images of positive exams with a MIL score at least this");
    v("negative_fraction", negative_fraction,
      "negatives: this fraction of negative exams' images, lowest MIL scores first");
  }
};

struct LocaliseCam {
  std::string method = "cam";
  std::vector<double> scales = {1.0, 0.5, 1.5};
  bool flips = true;
  template <class V>
  void visit(V& v) {
    v("method", method, "cam | gradcam++");
    v("scales", scales, "input scales averaged (EndoKED: 1.0, 0.5, 1.5)");
    v("flips", flips, "average each scale with its horizontal flip");
  }
};

struct LocaliseModel {
  std::string arch = "resnet18";
  int width = 16;
  int output_stride = 16;
  std::string weights;
  template <class V>
  void visit(V& v) {
    v("arch", arch, "resnet18 | resnet34 | resnet50");
    v("width", width, "stem channels (64 loads published weights)");
    v("output_stride", output_stride, "32 as published; 16 or 8 dilate the last stage(s)");
    v("weights", weights, "optional torchvision .pth or a localise model.pt");
  }
};

struct LocaliseOptions {
  std::string store;
  std::string scores;
  std::string truth;
  std::string output = "boxes";
  int image_size = 128;
  int batch_size = 16;
  double candidate_threshold = -1;
  bool save_cams = true;
  bool augment = true;
  int threads = 2;
  int montage = 12;
  std::uint64_t seed = 0;
  bool overwrite = false;
  LocaliseSelect select;
  LocaliseCam cam;
  vision::BoxRules box;
  LocaliseModel model;
  engine::TrainerOptions trainer;

  LocaliseOptions() {
    trainer.epochs = 8;
    trainer.log_every = 10;
    trainer.eval_every = 0;
    trainer.checkpoint.dir = "";
    trainer.lr_schedule.lr = 1e-3;
    trainer.lr_schedule.kind = "cosine";
  }

  template <class V>
  void visit(V& v) {
    v("store", store, "record store");
    v("scores", scores, "scores sidecar of the mil stage");
    v("truth", truth, "optional synthetic truth sidecar (images/boxes): box hit rate");
    v("output", output, "boxes sidecar store to write (with model.pt, model.json)");
    v("image_size", image_size, "images are resized to image_size × image_size");
    v("batch_size", batch_size, "images per rank per step");
    v("candidate_threshold", candidate_threshold,
      "images of positive exams with a MIL score at least this get a CAM and a box (< 0: the "
      "selected positives)");
    v("save_cams", save_cams,
      "keep each candidate's CAM as an 8-bit PNG (the cam refiner needs it)");
    v("augment", augment, "random horizontal and vertical flips while training");
    v("threads", threads, "decode threads and LibTorch threads per rank");
    v("montage", montage,
      "accepted and rejected candidates each in the run's montage-boxes.png (0: none)");
    v("seed", seed, "initialisation and order seed");
    v("overwrite", overwrite, "replace an existing output (only once the new one is complete)");
    v("select", select);
    v("cam", cam);
    v("box", box);
    v("model", model);
    v("trainer", trainer);
  }
};

/// Collective. Trains, boxes, writes the output and returns the summary.
nlohmann::json run_localise(dist::Communicator& comm, const LocaliseOptions& options,
                            const RunDir& run);

}  // namespace endoked::recipes
