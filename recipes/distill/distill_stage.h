#pragma once
// `endoked distill`: a segmentation model trained on the masks mined from records, with
// EndoKED's self-training rounds.
//
// Round 1 trains on the accepted masks of `masks` (a masks sidecar: endoked refine) — with
// `labels`, also on images of the exams the reports call negative, with empty masks
// (`negatives` of them per mask), so that the model learns what is not a polyp. After each
// round the model predicts every image the masks sidecar refined (accepted or not: the model may
// rescue an image its pseudo mask lost), the probability map resized to the image and binarised
// at `threshold`, and judges the mask with the localisation rules (`accept`, against the boxes
// the pseudo mask started from); the accepted ones are the next round's training masks (with
// `refine.refiner`, each accepted prediction is first refined again from its components' boxes,
// the SAM embedding cache making that cheap, and judged again). Round k's predictions are a masks
// sidecar of their own, `<output>-round<k>`, with provenance (the round, the masks it trained on,
// the model); the last round's are `output`, with the model beside (model.pt: our state dict,
// torch.save format; model.json: architecture, input size, normalisation, threshold; model.ts:
// TorchScript, images in, probabilities out, for torch.jit.load outside endoked).
//
// Training is engine::Trainer's (data parallel, checkpoints under <run dir>/checkpoints/
// distill-<hash of config and inputs>-round<k>, resume, preemption: exit 75 and rerun); the
// loss is the structure loss on each output of the deep-supervised network, pixels within
// `ignore_band` of a training mask's border left out. A round continues from the previous
// round's weights (`round_epochs` epochs; the first round `trainer.epochs`).
//
// With `truth` (a sidecar with images/mask, e.g. the synthetic truth): after every epoch the
// mean Dice on `eval_images` held-out images (truth masks with a polyp, not in the refined set;
// metrics.jsonl), and per round the Dice of the training masks and of the model's predictions on
// the same images, and the PraNet metrics (Dice, IoU, weighted F, S, mean E, MAE) on the
// held-out images. The run directory gets curves-distill-loss.png and curves-distill-dice.png
// (per epoch, rounds marked) and montage-distill.png (predictions on a sample).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"
#include "endoked/engine/trainer.h"
#include "endoked/vision/refine.h"
#include "endoked/vision/segnet.h"

namespace endoked::recipes {

struct DistillModel {
  std::string arch = "unet";
  std::string backbone = "resnet18";
  int width = 16;
  int decoder_width = 16;
  bool deep_supervision = true;
  std::string weights;
  template <class V>
  void visit(V& v) {
    v("arch", arch,
      "unet (a U-Net decoder) | pranet (PraNet's partial decoder and reverse attention), on a "
      "ResNet encoder");
    v("backbone", backbone, "resnet18 | resnet34 | resnet50");
    v("width", width, "the backbone's stem channels (64 loads published weights)");
    v("decoder_width", decoder_width,
      "unet: decoder channels at stride 2 (×2 per level up to ×8); pranet: half its channels");
    v("deep_supervision", deep_supervision,
      "the structure loss also on the auxiliary outputs (unet: strides 16, 8, 4; pranet: S_4, "
      "S_5, S_g)");
    v("weights", weights,
      "optional: a torchvision ResNet .pth (the encoder) or a distill model.pt (the whole model)");
  }
};

// Optional re-refinement inside the rounds (EndoKED refines the model's masks again): each
// predicted mask that passes the box rules gives boxes (one per component) to a refiner, whose mask
// is judged by the same rules and becomes the next round's training mask.
struct DistillRefine {
  std::string refiner;  // "": off
  int batch = 4;
  std::string cache;
  vision::RefinerOptions options;
  template <class V>
  void visit(V& v) {
    v("refiner", refiner,
      "refine each round's accepted predictions again: box | ellipse | grabcut | sam (\"\": off; "
      "cam needs the CAM, which distill does not have)");
    v("batch", batch, "images per image-encoder pass (sam)");
    v("cache", cache,
      "image-feature cache directory (sam embeddings; the one endoked refine filled makes rounds "
      "encode nothing)");
    v("options", options);
  }
};

struct DistillOptions {
  std::string store;
  std::string masks;
  std::string truth;
  std::string labels;
  double negatives = 1.0;
  std::string output = "distilled";
  int image_size = 128;
  std::vector<double> scales = {1.0};
  int batch_size = 8;
  int threads = 2;
  bool augment = true;
  int rounds = 1;
  std::int64_t round_epochs = 0;
  double threshold = 0.5;
  int ignore_band = 0;
  int eval_images = 200;
  int montage = 12;
  std::uint64_t seed = 0;
  bool overwrite = false;
  vision::MaskRules accept;
  DistillRefine refine;
  DistillModel model;
  engine::TrainerOptions trainer;

  DistillOptions() {
    trainer.epochs = 12;
    trainer.log_every = 10;
    trainer.checkpoint.dir = "";
    trainer.lr_schedule.lr = 1e-3;
    trainer.lr_schedule.kind = "cosine";
  }

  template <class V>
  void visit(V& v) {
    v("store", store, "record store");
    v("masks", masks, "masks sidecar to learn from (endoked refine): its accepted masks");
    v("truth", truth, "optional truth sidecar with images/mask: Dice per epoch and round");
    v("labels", labels,
      "optional labels sidecar (endoked label): images of negative exams join training with "
      "empty masks");
    v("negatives", negatives,
      "with labels: negative images per training mask (spread over the negative exams)");
    v("output", output,
      "masks sidecar of the last round's predictions (model.pt, model.json beside); earlier "
      "rounds: <output>-round<k>");
    v("image_size", image_size, "images are resized to image_size × image_size");
    v("scales", scales,
      "multi-scale training, as PraNet's [0.75, 1, 1.25]: each batch resized to one of these × "
      "image_size (a multiple of 32), chosen by a hash of its images; [1.0]: off");
    v("batch_size", batch_size, "images per rank per step");
    v("threads", threads, "decode threads and LibTorch threads per rank");
    v("augment", augment, "random horizontal and vertical flips while training");
    v("rounds", rounds, "training rounds; each after the first learns the previous one's masks");
    v("round_epochs", round_epochs, "epochs of rounds after the first (0: trainer.epochs)");
    v("threshold", threshold, "probability at which a prediction becomes mask");
    v("ignore_band", ignore_band,
      "training pixels within this distance (pixels at image_size) of a mask's border are "
      "ignored (0: none)");
    v("eval_images", eval_images,
      "held-out truth images evaluated after every epoch and round (with truth; 0: none)");
    v("montage", montage, "predicted images in the run's montage-distill.png (0: none)");
    v("seed", seed, "initialisation and order seed");
    v("overwrite", overwrite, "replace existing outputs (only once the new ones are complete)");
    v("accept", accept);
    v("refine", refine);
    v("model", model);
    v("trainer", trainer);
  }
};

/// The model a distill run wrote: `checkpoint` is its output folder or the model.pt in it
/// (model.json beside). Returns the network (eval mode) and model.json.
std::pair<vision::SegmentationNet, nlohmann::json> load_distilled(const std::string& checkpoint);

/// Collective. Trains the rounds, writes the outputs and returns the summary.
nlohmann::json run_distill(dist::Communicator& comm, const DistillOptions& options,
                           const RunDir& run);

}  // namespace endoked::recipes
