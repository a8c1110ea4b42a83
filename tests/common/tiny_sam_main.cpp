// endoked_tiny_sam PATH [tiny_vit|vit] [SEED]: writes a tiny random SAM checkpoint (the official
// key names, torch.save format) for shell tests of the sam refiner.
#include <iostream>
#include <string>

#include "tiny_sam.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: endoked_tiny_sam PATH [tiny_vit|vit] [SEED]\n";
    return 2;
  }
  endoked::testing::write_random_sam(argv[1], argc > 2 ? argv[2] : "tiny_vit",
                                     argc > 3 ? std::stoi(argv[3]) : 11);
  return 0;
}
