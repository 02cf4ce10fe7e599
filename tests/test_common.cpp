#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/image_io.h"
#include "common/plot.h"
#include "common/progress.h"
#include "hardware/units.h"

namespace vlascope {
namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("vlascope_test_common_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<char*> argv_of(std::vector<std::string>& words) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return argv;
}

TEST(ArgParser, ParsesOptionsFlagsAndPositionals) {
  ArgParser args("t", "test");
  args.positional("input", "file");
  args.option("episodes", "10", "n");
  args.option("alpha", "1.5", "a");
  args.option("sets", "", "names");
  args.flag("resume", "r");
  std::vector<std::string> words{"t", "data.h5", "--episodes=25", "--alpha", "-2.5", "--resume", "--sets", "high,low"};
  auto argv = argv_of(words);
  ASSERT_TRUE(args.parse(static_cast<int>(argv.size()), argv.data()));
  EXPECT_EQ(args.get("input"), "data.h5");
  EXPECT_EQ(args.get_int("episodes"), 25);
  EXPECT_DOUBLE_EQ(args.get_double("alpha"), -2.5);
  EXPECT_TRUE(args.get_flag("resume"));
  EXPECT_EQ(args.get_list("sets"), (std::vector<std::string>{"high", "low"}));
  EXPECT_TRUE(args.given("episodes"));
}

// What a --workers parent hands its children: the given options, which parse back to the same values, minus some.
TEST(ArgParser, GivenArgumentsParseBackToTheSameValues) {
  auto make = [] {
    ArgParser args("t", "test");
    args.positional("input", "file");
    args.option("task", "pick", "t");
    args.option("episodes", "10", "n");
    args.option("out", "", "o");
    args.flag("resume", "r");
    args.flag("quiet", "q");
    return args;
  };
  ArgParser first = make();
  std::vector<std::string> words{"t", "--task", "lift it --high", "data.h5", "--resume", "--quiet=0", "--out", "x"};
  auto argv = argv_of(words);
  ASSERT_TRUE(first.parse(static_cast<int>(argv.size()), argv.data()));
  std::vector<std::string> again = first.given_arguments({"out"});
  EXPECT_EQ(again, (std::vector<std::string>{"data.h5", "--task=lift it --high", "--resume", "--quiet=0"}));
  again.insert(again.begin(), "t");
  ArgParser second = make();
  auto argv2 = argv_of(again);
  ASSERT_TRUE(second.parse(static_cast<int>(argv2.size()), argv2.data()));
  EXPECT_EQ(second.get("task"), "lift it --high");
  EXPECT_EQ(second.get("input"), "data.h5");
  EXPECT_TRUE(second.get_flag("resume"));
  EXPECT_FALSE(second.get_flag("quiet"));
  EXPECT_FALSE(second.given("out"));
  EXPECT_FALSE(second.given("episodes"));
}

TEST(ArgParser, HelpAlignsShortNamesAndSpacesLongOnes) {
  ArgParser args("t", "test");
  args.option("seed", "7", "first seed");
  args.option("prompt-direction-size", "0", "channels");
  const std::string h = args.help();
  EXPECT_NE(h.find("  --seed VALUE                first seed [default: 7]\n"), std::string::npos) << h;
  EXPECT_NE(h.find("--prompt-direction-size VALUE channels"), std::string::npos) << h;
}

TEST(ArgParser, RejectsUnknownMissingAndMalformed) {
  {
    ArgParser args("t", "test");
    args.required("out", "o");
    std::vector<std::string> words{"t"};
    auto argv = argv_of(words);
    EXPECT_THROW(args.parse(static_cast<int>(argv.size()), argv.data()), Error);
  }
  {
    ArgParser args("t", "test");
    std::vector<std::string> words{"t", "--nope", "1"};
    auto argv = argv_of(words);
    EXPECT_THROW(args.parse(static_cast<int>(argv.size()), argv.data()), Error);
  }
  {
    ArgParser args("t", "test");
    args.option("n", "1", "n");
    std::vector<std::string> words{"t", "--n", "12x"};
    auto argv = argv_of(words);
    ASSERT_TRUE(args.parse(static_cast<int>(argv.size()), argv.data()));
    try {
      args.get_int("n");
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--n"), std::string::npos);  // names the option
    }
  }
}

TEST(ProgressBar, ResumedWorkCountsAsDoneButNotInTheRate) {
  ProgressBar::set_enabled(false);
  ProgressBar bar("train", 1000, "steps");
  bar.skip(750);  // a resumed run: 750 steps were done by the run before
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  bar.advance(2);
  EXPECT_EQ(bar.done(), 752);
  // Two steps in >= 20 ms is at most 100 steps/s; counting the skipped 750 would claim >= 37500.
  EXPECT_GT(bar.rate(), 0.0);
  EXPECT_LE(bar.rate(), 100.0);
  ProgressBar::set_enabled(true);
}

TEST(Units, RoundTripAndKnownValues) {
  JointVector sim{0.3, -1.2, 1.0, 0.4, -0.7, 0.5};
  JointVector back = from_lerobot(to_lerobot(sim));
  for (int j = 0; j < kNumJoints; ++j) EXPECT_NEAR(back[j], sim[j], 1e-12);
  // so100.md §1.7: LeRobot mid-range zero is pitch −π/2 and elbow +π/2 in the menagerie model (the L pose).
  JointVector zero = from_lerobot({0, 0, 0, 0, 0, 0});
  EXPECT_NEAR(zero[kShoulderLift], -M_PI / 2, 1e-12);
  EXPECT_NEAR(zero[kElbowFlex], M_PI / 2, 1e-12);
  EXPECT_NEAR(zero[kGripper], -0.174, 1e-12);
  EXPECT_NEAR(to_lerobot(sim)[kShoulderPan], -0.3 * 180 / M_PI, 1e-9);  // pan sign is flipped
  EXPECT_NEAR(from_lerobot({0, 0, 0, 0, 0, 100})[kGripper], 1.75, 1e-12);
}

TEST(FileIo, AtomicWriteReplacesWholeFilesAndNamesTheTargetOnError) {
  const std::string path = (temp_dir() / "atomic.json").string();
  write_file_atomically(path, "first, longer contents\n");
  write_file_atomically(path, "second\n");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second\n");  // replaced, not overwritten in place (no tail of the longer first file)
  for (const auto& entry : std::filesystem::directory_iterator(temp_dir()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();  // no temporary left
  const std::string missing = (temp_dir() / "no_such_dir" / "x.json").string();
  try {
    write_file_atomically(missing, "x");
    ADD_FAILURE() << "a missing folder must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(temp_dir() / "no_such_dir"));
  // A directory in the target's place cannot be replaced: the error names it and the temporary is gone.
  const std::string folder = (temp_dir() / "a_folder").string();
  std::filesystem::create_directories(folder);
  std::filesystem::create_directories(folder + "/inside");
  EXPECT_THROW(write_file_atomically(folder, "x"), Error);
  for (const auto& entry : std::filesystem::directory_iterator(temp_dir()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST(FileIo, Fnv1aMatchesTheReferenceValuesAndDigestNamesSizeAndHash) {
  EXPECT_EQ(fnv1a("", 0), kFnv1aOffset);
  // By hand (Python, mod 2^64): h = (h ^ byte) * 1099511628211 from vlascope's offset basis.
  EXPECT_EQ(fnv1a("a", 1), 0x44bd8ad473cd9906ull);
  EXPECT_EQ(fnv1a("foobar", 6), 0x88fad7c0a8ff07f2ull);
  EXPECT_EQ(fnv1a("bar", 3, fnv1a("foo", 3)), fnv1a("foobar", 6));  // continues across pieces
  const std::string path = (temp_dir() / "digest.bin").string();
  write_file_atomically(path, "foobar");
  EXPECT_EQ(file_digest(path), "6 bytes, fnv1a 88fad7c0a8ff07f2");
  EXPECT_THROW(file_digest((temp_dir() / "missing.bin").string()), Error);
}

TEST(ImageIo, PngRoundTripIsExact) {
  Image im(17, 9, 3);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i * 7);
  auto path = (temp_dir() / "a.png").string();
  write_png(path, im);
  Image back = read_png(path);
  ASSERT_EQ(back.width, 17);
  ASSERT_EQ(back.height, 9);
  EXPECT_EQ(back.pixels, im.pixels);
  EXPECT_THROW(read_png((temp_dir() / "missing.png").string()), Error);
  EXPECT_THROW(write_png((temp_dir() / "no_such_dir" / "x.png").string(), im), Error);
}

TEST(ImageIo, VideoWriterWritesFramesAndRejectsSizeChange) {
  auto path = (temp_dir() / "v.mp4").string();
  {
    VideoWriter video(path, 30);
    for (int f = 0; f < 10; ++f) video.write(Image(64, 48, 3, static_cast<uint8_t>(f * 20)));
    EXPECT_THROW(video.write(Image(32, 32, 3)), Error);
    EXPECT_EQ(video.frames(), 10);
  }
  EXPECT_GT(std::filesystem::file_size(path), 500u);
}

TEST(Plot, LinePlotAndBarChartDrawData) {
  LinePlot p{"title", "x", "y"};
  std::vector<double> x{0, 1, 2, 3}, y{0, 1, 4, 9}, lo{-1, 0, 3, 8}, hi{1, 2, 5, 10};
  p.add("squares", x, y, lo, hi);
  Image im = p.render(400, 300);
  ASSERT_EQ(im.width, 400);
  // The first palette colour must appear: the line was drawn.
  Rgb c = palette(0);
  int hits = 0;
  for (size_t i = 0; i < im.pixels.size(); i += 3)
    hits += im.pixels[i] == c[0] && im.pixels[i + 1] == c[1] && im.pixels[i + 2] == c[2];
  EXPECT_GT(hits, 50);

  BarChart b{"bars", "value", {"a", "b"}, {{"g", {1.0, -2.0}, {0.5, 0.5}}}};
  Image bars = b.render(300, 200);
  hits = 0;
  for (size_t i = 0; i < bars.pixels.size(); i += 3)
    hits += bars.pixels[i] == c[0] && bars.pixels[i + 1] == c[1] && bars.pixels[i + 2] == c[2];
  EXPECT_GT(hits, 500);
  BarChart bad{"bad", "v", {"a", "b"}, {{"g", {1.0}, {}}}};
  EXPECT_THROW(bad.render(), Error);
}

TEST(Plot, ALegendLongerThanThePlotIsCutWithACountNotACrash) {
  // 27 conditions of a steering study once drew their legend past the image's bottom edge (an OpenCV assertion).
  LinePlot p{"many series", "t", "h"};
  for (int k = 0; k < 60; ++k)
    p.add("a long condition name " + std::to_string(k), {0, 1}, {double(k), double(k) + 1});
  const Image small = p.render(300, 200);
  EXPECT_EQ(small.height, 200);
  EXPECT_EQ(p.render(800, 480).height, 480);
}

TEST(ImageOps, ColormapOverlayStack) {
  std::vector<float> v{0, 1, 2, 3};
  Image heat = colormap(v, 2, 2);
  EXPECT_NE(std::vector<uint8_t>(heat.at(0, 0), heat.at(0, 0) + 3), std::vector<uint8_t>(heat.at(1, 1), heat.at(1, 1) + 3));
  Image base(8, 8, 3, 100);
  Image o = overlay(base, heat, 0.5);
  EXPECT_EQ(o.width, 8);
  EXPECT_NE(o.pixels, base.pixels);
  Image s = hstack({base, Image(4, 6, 1, 255)}, 2);
  EXPECT_EQ(s.width, 14);
  EXPECT_EQ(s.height, 8);
  EXPECT_EQ(s.at(10, 0)[0], 255);
}

}  // namespace
}  // namespace vlascope
