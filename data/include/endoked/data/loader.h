#pragma once
// The loader: a pool of decode/augment threads feeding a bounded queue of batches.
//
// Threading: `threads` workers per rank read (HDF5 access is serialised inside the dataset),
// decode (libjpeg-turbo, DCT-scaled to the size the transforms need) and transform samples; the
// caller's thread only assembles finished batches. OpenCV's own thread pool is switched off by
// the loader (its workers are the parallelism); cap LibTorch's with cap_library_threads.
// Errors: a corrupt image is skipped and counted (on_error: skip) or fails the run naming the
// image (on_error: fail); any other exception in a worker is rethrown on the caller's thread by
// next(), with the image id.
// Order and randomness: see sampler.h; sample i of epoch e is augmented from
// Rng(seed, "augment", e) forked by i, whatever the thread count or world size.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "endoked/data/dataset.h"
#include "endoked/data/sampler.h"
#include "endoked/data/transforms.h"

namespace endoked::data {

struct LoaderOptions {
  int batch_size = 32;
  int threads = 2;
  int prefetch = 4;  // batches decoded ahead
  std::uint64_t seed = 0;
  std::string tail = "partial";   // drop | partial | pad (sampler.h)
  std::string on_error = "skip";  // skip | fail
  bool dct_scaling = true;
  bool fast_decode = false;
  std::vector<TransformSpec> transforms;

  template <class V>
  void visit(V& v) {
    v("batch_size", batch_size, "items per batch per rank");
    v("threads", threads, "decode/augment threads per rank");
    v("prefetch", prefetch, "batches prepared ahead");
    v("seed", seed, "order and augmentation seed");
    v("tail", tail, "last partial step: drop | partial | pad");
    v("on_error", on_error, "corrupt image: skip (count it) | fail (name it)");
    v("dct_scaling", dct_scaling, "decode JPEGs at 1/2, 1/4, 1/8 when the output allows");
    v("fast_decode", fast_decode,
      "fast IDCT and chroma upsampling when the image is downscaled afterwards");
    v("transforms", transforms,
      "list of {name: …, …}: resize, random_resized_crop, hflip, vflip, rotate, colour_jitter, "
      "normalise");
  }
};

/// One batch. For unit "image" every item has one image; for unit "exam" item b's images are
/// rows [offsets[b], offsets[b+1]) of `images`.
struct Batch {
  at::Tensor images;                         // [N, 3, H, W] float32
  at::Tensor masks;                          // [N, 1, H, W] uint8 (0/1); undefined without masks
  std::vector<std::vector<Box>> boxes;       // per image, pixels of the output
  std::map<std::string, at::Tensor> labels;  // per item, [B] float32
  std::vector<std::int64_t> offsets;         // [B + 1]
  std::vector<std::int64_t> indices;         // dataset index per item
  std::vector<std::string> ids;              // per image
  std::int64_t skipped = 0;                  // corrupt images left out of this batch
  std::int64_t items() const { return static_cast<std::int64_t>(indices.size()); }
};

/// Turns off OpenCV's pool and sets LibTorch's intra-op threads (call once per rank).
void cap_library_threads(int torch_threads);

/// The training stages' loader: every image resized to size × size, flipped at random both ways
/// when `augment`, normalised; corrupt images skipped and counted.
LoaderOptions square_loader_options(int size, int threads, std::uint64_t seed, bool augment);

class Loader {
 public:
  /// Reads epoch `epoch` for `rank` of `world`, starting at global `cursor` (0: the beginning).
  Loader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options, std::int64_t epoch,
         int rank = 0, int world = 1, std::int64_t cursor = 0);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch of this rank; false at the end of the epoch. Same number of steps on every
  /// rank (a batch may be empty under tail: partial).
  bool next(Batch& batch);
  /// The global cursor after the batches returned so far: where a resumed epoch starts.
  std::int64_t cursor() const;
  std::int64_t steps() const;
  std::int64_t skipped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace endoked::data
