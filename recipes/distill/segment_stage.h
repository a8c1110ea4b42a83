#pragma once
// `endoked segment`: a distilled model applied to new images — a folder (recursively: png, jpg,
// jpeg, bmp, tif, tiff) or a record store — on N ranks (a store's shard s, or a folder's block of
// 256 images s, by rank s % world).
//
// Output (`output`, a new or empty folder): masks/<path>.png — 0/255 PNG at the image's original
// size, one per image, under the image's relative path (a store: its source path) with the
// extension .png — and, with `overlays`, overlays/<path>.png: the image with the mask's outline.
// Each file is written atomically. An image that does not decode is skipped, counted and named
// (segment.json and the log); the others go on. segment.json in the output folder: counts, the
// model, the threshold and the skipped images.
#include <nlohmann/json.hpp>

#include <string>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"

namespace endoked::recipes {

struct SegmentOptions {
  std::string checkpoint;
  std::string images;
  std::string store;
  std::string output;
  double threshold = -1;
  int batch_size = 8;
  int threads = 2;
  bool overlays = true;
  template <class V>
  void visit(V& v) {
    v("checkpoint", checkpoint, "a distill output folder (model.pt, model.json) or its model.pt");
    v("images", images, "a folder of images to segment (or `store`)");
    v("store", store, "a record store to segment (or `images`)");
    v("output", output, "a new or empty folder: masks/ and overlays/");
    v("threshold", threshold, "probability at which a pixel is mask (< 0: the model's)");
    v("batch_size", batch_size, "images per forward pass");
    v("threads", threads, "decode threads and LibTorch threads per rank");
    v("overlays", overlays, "also overlays/<path>.png: the image with the mask's outline");
  }
};

/// Collective. Segments, writes the files and returns the summary.
nlohmann::json run_segment(dist::Communicator& comm, const SegmentOptions& options,
                           const RunDir& run);

}  // namespace endoked::recipes
