#pragma once
// Tiny random SAM models for tests: the code paths of SAM ViT-B/L/H and MobileSAM with small
// widths and depths.
#include <string>

#include "endoked/vision/sam.h"

namespace endoked::testing {

/// encoder "tiny_vit" (MobileSAM-shaped, 1024-px input: padded windows at 128 and 64 px, exact
/// ones at 64 px) or "vit" (64-px input, a 4 × 4 grid padded to 6 × 6 windows, one global block).
vision::sam::Config tiny_sam_config(const std::string& encoder);
/// The model with random weights everywhere (no parameter a trivial 0 or 1).
vision::sam::Sam random_sam(const vision::sam::Config& c, int seed);
/// random_sam(tiny_sam_config(encoder), seed) written with the torch.save writer.
void write_random_sam(const std::string& path, const std::string& encoder, int seed);

}  // namespace endoked::testing
