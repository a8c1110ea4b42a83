#pragma once
// Image bytes as received: format sniffing, header dimensions, decode checks, encoding.
// JPEG goes through libjpeg-turbo (DCT-domain scaled decode where it suffices); other formats
// through OpenCV. All functions are thread-safe (TurboJPEG handles are per thread).
#include <cstdint>
#include <string>
#include <string_view>

namespace endoked::data {

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kTiff, kWebp };

/// From the signature bytes, never the file name.
ImageFormat sniff_format(std::string_view bytes);
const char* format_name(ImageFormat format);

struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
};

/// Reads the header only. Throws Error with the reason ("not an image", "bad JPEG header", …).
ImageInfo read_image_info(std::string_view bytes);

/// Decodes the whole compressed stream (JPEG at the smallest DCT scale, which still reads every
/// entropy-coded byte; warnings such as a premature end are errors). Throws Error with the reason.
ImageInfo check_decodes(std::string_view bytes);

/// RGB, 8 bits, row-major [H, W, 3] → JPEG bytes.
std::string encode_jpeg_rgb(const std::uint8_t* rgb, int width, int height, int quality);

}  // namespace endoked::data
