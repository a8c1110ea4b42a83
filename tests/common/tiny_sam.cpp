#include "tiny_sam.h"

#include <torch/torch.h>

#include "endoked/vision/weights.h"

namespace endoked::testing {

vision::sam::Config tiny_sam_config(const std::string& encoder) {
  vision::sam::Config c;
  c.encoder = encoder;
  c.tiny.img_size = 1024;  // TinyViT has no shape that shows its input side: SAM's 1024
  c.tiny.dims = {8, 16, 24, 32};
  c.tiny.depths = {1, 2, 1, 1};
  c.tiny.heads = {1, 2, 3, 4};
  c.tiny.windows = {1, 5, 7, 8};  // padded windows at 128 and 64 px, exact ones at 64 px
  c.tiny.classes = 10;
  c.tiny.out_chans = 32;
  c.vit.img_size = 64;
  c.vit.patch = 16;
  c.vit.embed_dim = 16;
  c.vit.depth = 2;
  c.vit.heads = 2;
  c.vit.mlp_dim = 32;
  c.vit.window = 3;  // a 4 × 4 grid padded to 6 × 6
  c.vit.global_blocks = {1};
  c.vit.out_chans = 32;
  const int side = encoder == "vit" ? 64 : 1024;
  c.prompt = {32, side / 16, side, 8};
  c.decoder.dim = 32;
  c.decoder.mlp_dim = 64;
  c.decoder.iou_hidden = 32;
  return c;
}

vision::sam::Sam random_sam(const vision::sam::Config& c, int seed) {
  torch::manual_seed(seed);
  vision::sam::Sam s(c);
  torch::NoGradGuard ng;
  for (auto& p : s.module().parameters()) p.add_(0.2 * torch::randn_like(p));
  for (auto& item : s.module().named_buffers())
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  return s;
}

void write_random_sam(const std::string& path, const std::string& encoder, int seed) {
  vision::sam::Sam s = random_sam(tiny_sam_config(encoder), seed);
  vision::save_state_dict(vision::state_dict_from(s.module()), path);
}

}  // namespace endoked::testing
