#pragma once
// `endoked refine`: boxes → masks. Every image with an accepted box in the boxes sidecar
// (endoked localise, or any boxes sidecar) is refined by the named refiner (vision/refine.h:
// box | ellipse | grabcut | cam, and any refiner registered later), starting from its boxes and
// its CAM when the boxes sidecar kept one; the mask is judged by the `accept` rules and kept with
// its status (accepted or the reject reason), scores, quality and the boxes it came from.
// Shard s is refined by rank s % world (threads inside a shard), so the output is the same on
// any number of ranks. A refiner with image features (sam's image embeddings) gets them for
// `batch` images at a time in one encoder pass on `threads` intra-op threads, from `cache` when
// it holds them (data/feature_cache.h), and then refines the batch's images on `threads` threads
// of one intra-op thread each.
//
// Output (`output`, a "masks" sidecar with the record store's shard layout) whose manifest keeps
// the refiner, its options, the rules and the boxes sidecar's provenance (CAM method, box rules,
// model); montage-masks.png in the run directory: a sample of accepted and of rejected images with
// CAM, box and mask drawn. With `truth` (a sidecar with images/mask, e.g. the synthetic truth):
// mean Dice and IoU of the accepted masks (segmentation_score, as PraNet computes them) and of
// the filled boxes on the same images — the baseline a refiner must beat.
#include <nlohmann/json.hpp>

#include <string>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"
#include "endoked/vision/refine.h"

namespace endoked::recipes {

struct RefineOptions {
  std::string store;
  std::string boxes;
  std::string truth;
  std::string output = "masks";
  std::string refiner = "ellipse";
  int threads = 2;
  int batch = 4;
  std::string cache;
  int montage = 12;
  bool overwrite = false;
  vision::RefinerOptions options;
  vision::MaskRules accept;
  template <class V>
  void visit(V& v) {
    v("store", store, "record store");
    v("boxes", boxes, "boxes sidecar (endoked localise)");
    v("truth", truth, "optional truth sidecar with images/mask: Dice / IoU of the masks");
    v("output", output, "masks sidecar store to write");
    v("refiner", refiner,
      "box | ellipse | grabcut | cam | sam (the default won the Kvasir-SEG benchmark: README)");
    v("threads", threads, "refining threads per rank");
    v("batch", batch,
      "images per image-encoder pass (refiners with image features: sam), on `threads` threads");
    v("cache", cache,
      "directory of the image-feature cache (sam: image embeddings by image content and model; "
      "\"\": none): a second run over the same images skips the encoder");
    v("montage", montage, "accepted and rejected images each in the run's montage-masks.png (0: none)");
    v("overwrite", overwrite, "replace an existing output (only once the new one is complete)");
    v("options", options);
    v("accept", accept);
  }
};

/// Collective. Refines, writes the output and returns the summary.
nlohmann::json run_refine(dist::Communicator& comm, const RefineOptions& options,
                          const RunDir& run);

}  // namespace endoked::recipes
