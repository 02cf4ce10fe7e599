// Sparse autoencoders (issue 17): the activation store round-trips and refuses unfinished or short stores; a TopK SAE
// recovers the directions sparse synthetic data was made of and explains its variance; features that fire on one
// phase of one variant are found by the feature statistics; save/load keeps the numbers and names a bad file; capture
// on a real (tiny) policy writes exactly the hook's rows with their kinds; and the splice leaves the policy untouched
// when off and changes it the way each mode says; the explorer indexes a folder and leaves out what a study could not
// compute.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "interp/activation_store.h"
#include "interp/explorer.h"
#include "interp/neurons.h"
#include "interp/patching.h"
#include "interp/sae.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "tests/tiny_policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

// The bars of training and capture would fill the test log.
const bool kQuiet = (ProgressBar::set_enabled(false), true);

struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / ("vlascope_test_sae_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
};

std::vector<std::vector<float>> unit_directions(int count, int width, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> out(static_cast<size_t>(count), std::vector<float>(static_cast<size_t>(width)));
  for (auto& d : out) {
    double n = 0;
    for (float& x : d) {
      x = normal(rng);
      n += x * x;
    }
    for (float& x : d) x /= static_cast<float>(std::sqrt(n));
  }
  return out;
}

// Rows made of 3 of `truth`'s directions each (coefficients 1…3) plus a constant offset; episode e has 50 rows, its
// variant alternates high/low, rows 20–39 are the lift phase. In high episodes' lift rows `extra` is added too.
void write_synthetic_store(const fs::path& dir, const std::vector<std::vector<float>>& truth,
                           const std::vector<float>* extra, int episodes) {
  const int width = static_cast<int>(truth[0].size());
  ActivationStoreWriter w(dir.string(), width);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(truth.size()) - 1);
  std::uniform_real_distribution<float> coef(1, 3);
  for (int e = 0; e < episodes; ++e) {
    std::vector<float> values;
    std::vector<ActivationRow> rows;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> x(static_cast<size_t>(width), 0.5f);
      for (int j = 0; j < 3; ++j) {
        const auto& d = truth[static_cast<size_t>(pick(rng))];
        const float c = coef(rng);
        for (int k = 0; k < width; ++k) x[static_cast<size_t>(k)] += c * d[static_cast<size_t>(k)];
      }
      const bool lift = i >= 20 && i < 40;
      if (extra && lift && e % 2 == 0)
        for (int k = 0; k < width; ++k) x[static_cast<size_t>(k)] += 3 * (*extra)[static_cast<size_t>(k)];
      values.insert(values.end(), x.begin(), x.end());
      ActivationRow r;
      r.episode = e;
      r.frame = i;
      r.position = i % 7;
      r.kind = RowKind::kImage;
      r.phase = static_cast<int32_t>(lift ? Phase::kLift : Phase::kReach);
      r.variant = e % 2;  // 0 high, 1 low
      rows.push_back(r);
    }
    w.append(values.data(), rows);
  }
  StoreInfo info;
  info.hook = "vlm.layers.0.resid.post@images";
  info.variants = {"high", "low"};
  info.cameras = {"scene"};
  w.finish(info);
}

TEST(ActivationStore, RoundTripsAndRefusesUnfinishedOrShortStores) {
  ScratchDir tmp("store");
  const fs::path dir = tmp.path / "s";
  {
    ActivationStoreWriter w(dir.string(), 3);
    const std::vector<float> v = {1, 2, 3, 4, 5, 6};
    ActivationRow a{4, 7, 2, -1, RowKind::kWord, 3, 1};
    ActivationRow b{5, 8, 0, 9, RowKind::kAction, 2, -1};
    w.append(v.data(), {a, b});
    // Not finished yet: a reader refuses the folder.
    EXPECT_THROW(ActivationStore{dir.string()}, Error);
    StoreInfo info;
    info.hook = "expert.layers.1.mlp.post";
    info.variants = {"high", "low"};
    w.finish(info);
  }
  const ActivationStore s(dir.string());
  ASSERT_EQ(s.count(), 2);
  EXPECT_EQ(s.width(), 3);
  EXPECT_EQ(s.info().hook, "expert.layers.1.mlp.post");
  EXPECT_FLOAT_EQ(s.row(1)[2], 6);
  EXPECT_EQ(s.meta(0).episode, 4);
  EXPECT_EQ(s.meta(0).kind, RowKind::kWord);
  EXPECT_EQ(s.meta(0).variant, 1);
  EXPECT_EQ(s.meta(1).step, 9);
  EXPECT_EQ(s.meta(1).kind, RowKind::kAction);
  // A writer dropped before finish() publishes nothing and leaves no temporaries.
  {
    ActivationStoreWriter w((tmp.path / "dropped").string(), 2);
    const std::vector<float> v = {1, 2};
    w.append(v.data(), {ActivationRow{}});
  }
  EXPECT_FALSE(fs::exists(tmp.path / "dropped" / "store.json"));
  EXPECT_FALSE(fs::exists(tmp.path / "dropped" / "activations.f32.tmp"));
  // A data file shorter than store.json says: an Error naming the file.
  fs::resize_file(dir / "activations.f32", 20);
  try {
    ActivationStore broken(dir.string());
    FAIL() << "a short store was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("activations.f32"), std::string::npos) << e.what();
  }
}

TEST(ActivationStore, HeldOutEpisodesAreWhole) {
  ScratchDir tmp("split");
  const auto truth = unit_directions(4, 8, 1);
  write_synthetic_store(tmp.path / "s", truth, nullptr, 20);
  const ActivationStore s((tmp.path / "s").string());
  const RowSplit split = split_by_episode(s, 10);
  EXPECT_EQ(split.heldout.size(), 2u * 50);  // episodes 19 and 9
  for (int64_t r : split.heldout) EXPECT_TRUE(s.meta(r).episode == 19 || s.meta(r).episode == 9);
  EXPECT_EQ(split.train.size() + split.heldout.size(), static_cast<size_t>(s.count()));
  EXPECT_TRUE(split_by_episode(s, 1).heldout.empty());
}

TEST(Sae, RecoversTheDirectionsSparseDataIsMadeOf) {
  ScratchDir tmp("train");
  const int width = 24, atoms = 32;
  const auto truth = unit_directions(atoms, width, 5);
  write_synthetic_store(tmp.path / "s", truth, nullptr, 80);
  const ActivationStore store((tmp.path / "s").string());
  SaeTrainOptions o;
  o.features = 64;
  o.k = 4;
  o.steps = 1500;
  o.batch = 256;
  o.lr = 3e-3;
  o.dead_after = 20000;
  SaeTrainReport report;
  const Sae sae = Sae::train(store, o, &report);
  const RowSplit split = split_by_episode(store, o.holdout);
  const SaeEvaluation e = evaluate_sae(sae, store, split.heldout);
  EXPECT_GT(e.variance_explained, 0.9) << "held-out variance explained";
  EXPECT_LE(e.mean_l0, 4.0);
  EXPECT_GT(report.samples_per_second, 0);
  EXPECT_LT(report.curve.back().second, report.curve.front().second);
  // Most true directions have a decoder row pointing along them.
  int found = 0;
  for (const auto& d : truth) {
    double best = 0;
    for (int f = 0; f < sae.config().features; ++f) best = std::max(best, cosine(d, sae.decoder_direction(f)));
    found += best > 0.9;
  }
  EXPECT_GE(found, atoms * 3 / 4) << "of " << atoms << " directions";

  // Save and load: the same numbers; a wrong shape in the file is an Error naming it.
  sae.save((tmp.path / "sae").string());
  const Sae again = Sae::load((tmp.path / "sae").string());
  const std::vector<float> a = sae.reconstruct(store.row(0), 5), b = again.reconstruct(store.row(0), 5);
  EXPECT_EQ(a, b);
  EXPECT_EQ(again.config().hook, "vlm.layers.0.resid.post@images");
  EXPECT_EQ(again.config().k, 4);
  {
    std::ifstream in(tmp.path / "sae" / "sae.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("\"features\": 64"), 14, "\"features\": 65");
    std::ofstream(tmp.path / "sae" / "sae.json") << text;
  }
  try {
    Sae::load((tmp.path / "sae").string());
    FAIL() << "a mismatched SAE loaded";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("sae.safetensors"), std::string::npos) << err.what();
  }
}

TEST(Sae, FeatureStatisticsFindWhatFiresInOneVariantsLift) {
  ScratchDir tmp("features");
  const int width = 24;
  auto truth = unit_directions(17, width, 7);
  const std::vector<float> extra = truth.back();  // only in high episodes' lift phase
  truth.pop_back();
  write_synthetic_store(tmp.path / "s", truth, &extra, 40);
  const ActivationStore store((tmp.path / "s").string());
  SaeTrainOptions o;
  o.features = 48;
  o.k = 4;
  o.steps = 1200;
  o.batch = 256;
  o.lr = 3e-3;
  o.dead_after = 20000;
  const Sae sae = Sae::train(store, o);
  const std::vector<SaeFeature> stats = feature_statistics(sae, store, 5);
  ASSERT_EQ(stats.size(), 48u);
  int along = 0;
  for (int f = 1; f < 48; ++f)
    if (cosine(sae.decoder_direction(f), extra) > cosine(sae.decoder_direction(along), extra)) along = f;
  ASSERT_GT(cosine(sae.decoder_direction(along), extra), 0.9);
  const SaeFeature& s = stats[static_cast<size_t>(along)];
  // Half the episodes (the low ones) never fire it, lift or not: d_z ≈ mean/sd of {0, …, +3, …} ≈ 1.
  EXPECT_GT(s.lift_d, 0.8);
  EXPECT_GT(s.high_low_g, 2);
  EXPECT_LT(s.high_low_p, 1e-4);
  ASSERT_EQ(s.top_rows.size(), 5u);
  for (const auto& [value, row] : s.top_rows) {
    EXPECT_EQ(store.meta(row).variant, 0) << "a top row outside the high episodes";
    EXPECT_EQ(store.meta(row).phase, static_cast<int32_t>(Phase::kLift));
  }
  EXPECT_GT(s.phase_mean[static_cast<size_t>(Phase::kLift)], 10 * s.phase_mean[static_cast<size_t>(Phase::kReach)]);
  // No other feature is as tied to high vs low.
  for (const SaeFeature& t : stats)
    if (t.feature != along) {
      EXPECT_LT(std::abs(t.high_low_g), s.high_low_g) << "feature " << t.feature;
    }
}

TEST(Sae, CaptureWritesExactlyTheHooksRowsWithTheirKinds) {
  TinyPolicy f("sae_capture");
  const fs::path demos = f.write_demos(
      3, 4, [](int e, EpisodeInfo& info) { info.variant = e == 0 ? "high" : "low"; },
      [](int i) { return i < 2 ? Phase::kReach : Phase::kLift; });
  const DatasetReader dataset(demos.string());
  // VLM: images (2 cameras × 4) + state per frame; the values are the hook's own.
  CaptureOptions o;
  o.spec = "vlm.layers.1.resid.post@images+state";
  o.stride = 2;
  const StoreInfo info = capture_activations(*f.policy, dataset, o, (f.dir / "vlm").string());
  const ActivationStore vlm((f.dir / "vlm").string());
  EXPECT_EQ(info.frames, 3 * 2);
  ASSERT_EQ(vlm.count(), 3 * 2 * 9);
  EXPECT_EQ(vlm.width(), f.policy->config().text.hidden);
  EXPECT_EQ(vlm.info().variants, (std::vector<std::string>{"high", "low"}));
  EXPECT_EQ(vlm.meta(8).kind, RowKind::kState);
  EXPECT_EQ(vlm.meta(8).position, 12);  // after 8 image rows and 4 words
  EXPECT_EQ(vlm.meta(3).kind, RowKind::kImage);
  EXPECT_EQ(vlm.meta(9).frame, 2);
  EXPECT_EQ(vlm.meta(9).phase, static_cast<int32_t>(Phase::kLift));
  EXPECT_EQ(vlm.meta(2 * 9 * 2).variant, 1);  // episode 2 is "low"
  // Row 8 is frame (0, 0)'s state row: the same numbers a hook of our own sees.
  std::vector<float> seen;
  HookHandle handle = f.policy->hooks().add("vlm.layers.1.resid.post", [&](const HookContext& ctx, at::Tensor& act) {
    const torch::Tensor row = act.select(0, 0).select(0, ctx.state_index).to(torch::kFloat32).contiguous();
    seen.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
  });
  f.policy->predict_chunk(frame_input(dataset.frame(0, 0), dataset.info(0).instruction), 0, 0);
  handle.reset();
  ASSERT_EQ(static_cast<int64_t>(seen.size()), vlm.width());
  for (int64_t c = 0; c < vlm.width(); ++c) EXPECT_FLOAT_EQ(vlm.row(8)[c], seen[static_cast<size_t>(c)]);

  // Expert: every action row of the chosen steps.
  o.spec = "expert.layers.0.mlp.post@steps:0,9";
  capture_activations(*f.policy, dataset, o, (f.dir / "expert").string());
  const ActivationStore expert((f.dir / "expert").string());
  const int chunk = f.policy->config().chunk_size;
  ASSERT_EQ(expert.count(), 6 * 2 * chunk);
  EXPECT_EQ(expert.meta(0).step, 0);
  EXPECT_EQ(expert.meta(chunk).step, 9);
  EXPECT_EQ(expert.meta(chunk + 3).position, 3);
  EXPECT_EQ(expert.meta(0).kind, RowKind::kAction);
  EXPECT_THROW(capture_activations(*f.policy, dataset, CaptureOptions{"vlm.layers.9.resid.post"}, (f.dir / "x").string()),
               Error);
}

TEST(Sae, SpliceIsInertWhenOffAndDoesWhatEachModeSays) {
  TinyPolicy f("sae_splice");
  const fs::path demos = f.write_demos(
      10, 6, [](int e, EpisodeInfo& info) { info.variant = e % 2 ? "low" : "high"; },
      [](int i) { return i < 3 ? Phase::kReach : Phase::kLift; });
  const DatasetReader dataset(demos.string());
  CaptureOptions o;
  o.spec = "vlm.layers.2.resid.post@images+words+state";
  o.stride = 1;
  capture_activations(*f.policy, dataset, o, (f.dir / "store").string());
  const ActivationStore store((f.dir / "store").string());
  SaeTrainOptions t;
  t.features = 4 * store.width();
  t.k = 16;
  t.steps = 600;
  t.batch = 128;
  t.lr = 2e-3;
  t.holdout = 5;
  const Sae sae = Sae::train(store, t);
  const SaeEvaluation e = evaluate_sae(sae, store, split_by_episode(store, 5).heldout);
  EXPECT_GT(e.variance_explained, 0.8);
  // Per kind of row: the image, word and state rows, which together are all of them.
  ASSERT_EQ(e.by_kind.size(), 3u);
  EXPECT_EQ(e.by_kind.at(RowKind::kImage).rows + e.by_kind.at(RowKind::kWord).rows + e.by_kind.at(RowKind::kState).rows,
            e.rows);
  EXPECT_EQ(e.by_kind.at(RowKind::kImage).rows, 8 * e.by_kind.at(RowKind::kState).rows);
  EXPECT_TRUE(sae.config().balance_kinds);

  const PolicyInput in = frame_input(dataset.frame(1, 2), dataset.info(1).instruction);
  const auto plain = f.policy->predict_chunk(in, 3, 0);
  {
    // What the splice's hook point holds before and after the splice (hooks run in the order they were added).
    std::vector<float> before, after;
    auto keep = [](std::vector<float>& into) {
      return [&into](const HookContext&, at::Tensor& act) {
        const torch::Tensor a = act.select(0, 0).to(torch::kFloat32).contiguous();
        into.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
      };
    };
    HookHandle first = f.policy->hooks().add("vlm.layers.2.resid.post", keep(before));
    SaeSplice splice(*f.policy, sae);
    HookHandle last = f.policy->hooks().add("vlm.layers.2.resid.post", keep(after));
    EXPECT_EQ(f.policy->predict_chunk(in, 3, 0), plain) << "a splice that is off changed the actions";
    EXPECT_EQ(splice.rows_written(), 0);
    EXPECT_EQ(before, after);
    // Clamping feature 0 at 5: each row moves by (5 − f₀(x))·d₀ in the activation's units, the SAE's error kept.
    splice.set_mode(SaeSplice::Mode::kClamp);
    splice.set_clamp({{0, 5.0f}});
    EXPECT_NE(f.policy->predict_chunk(in, 3, 0), plain);
    EXPECT_EQ(splice.rows_written(), 8 + 4 + 1);
    const int64_t width = sae.config().width, rows = static_cast<int64_t>(before.size()) / width;
    ASSERT_EQ(rows, 8 + 4 + 1);  // the tiny prefix: every row is one the SAE reads
    const std::vector<Sae::Code> codes = sae.encode(before.data(), rows);
    const std::vector<float> d0 = sae.decoder_direction(0);
    double worst = 0, size = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const Sae::Code& c = codes[static_cast<size_t>(r)];
      float f0 = 0;
      for (size_t j = 0; j < c.features.size(); ++j)
        if (c.features[j] == 0) f0 = c.values[j];
      for (int64_t k = 0; k < width; ++k) {
        const double expected = (5.0 - f0) * d0[static_cast<size_t>(k)];
        const size_t at = static_cast<size_t>(r * width + k);
        worst = std::max(worst, std::abs((after[at] - before[at]) - expected));
        size = std::max(size, std::abs(expected));
      }
    }
    EXPECT_LT(worst, 1e-4 * std::max(1.0, size)) << "the clamp's change is not (5 − f₀)·d₀";
    // The mean mode writes the training rows' mean into every row.
    splice.set_mode(SaeSplice::Mode::kMean);
    f.policy->predict_chunk(in, 3, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < width; ++k)
        ASSERT_FLOAT_EQ(after[static_cast<size_t>(r * width + k)], sae.input_mean()[static_cast<size_t>(k)]);
    // The clamp on the state row alone (the prefix's last row): that row moves, every other row is left as it was.
    apply_splice_setting(splice, parse_splice_setting("clamp:0=5@state", "test"));
    const int64_t written = splice.rows_written();
    f.policy->predict_chunk(in, 3, 0);
    EXPECT_EQ(splice.rows_written() - written, 1);
    for (int64_t k = 0; k < (rows - 1) * width; ++k) ASSERT_EQ(after[static_cast<size_t>(k)], before[static_cast<size_t>(k)]);
    bool moved = false;
    for (int64_t k = (rows - 1) * width; k < rows * width; ++k) moved |= after[static_cast<size_t>(k)] != before[static_cast<size_t>(k)];
    EXPECT_TRUE(moved);
    apply_splice_setting(splice, parse_splice_setting("clamp:0=5", "test"));  // every row again
    f.policy->predict_chunk(in, 3, 0);
    EXPECT_EQ(splice.rows_written() - written, 1 + rows);
    splice.set_mode(SaeSplice::Mode::kOff);
    first.reset();
    last.reset();
  }
  EXPECT_EQ(f.policy->predict_chunk(in, 3, 0), plain) << "the splice's hook outlived it";
  // Open loop: what the SAE keeps moves the chunk less than writing the mean does.
  CaptureOptions frames;
  frames.stride = 3;
  const SpliceError err = splice_action_error(*f.policy, sae, dataset, frames);
  EXPECT_EQ(err.frames, 10 * 2);
  EXPECT_GT(err.mean_ablated, 0);
  EXPECT_LT(err.ratio(), 0.5) << "spliced " << err.spliced << " vs mean " << err.mean_ablated;
  EXPECT_THROW(SaeSplice(*f.policy, sae).set_clamp({{static_cast<int>(sae.config().features), 1.0f}}), Error);
}

// One parser reads a splice's setting for eval --sae-mode and steer-experiment --sae-conditions.
TEST(Sae, SpliceSettingsParseOrNameWhatIsWrong) {
  EXPECT_EQ(parse_splice_setting("reconstruct", "x").mode, SaeSplice::Mode::kReconstruct);
  EXPECT_EQ(parse_splice_setting("mean", "x").mode, SaeSplice::Mode::kMean);
  const SpliceSetting clamp = parse_splice_setting("clamp:3=1.5,17=-2", "x");
  EXPECT_EQ(clamp.mode, SaeSplice::Mode::kClamp);
  EXPECT_EQ(clamp.clamp, (std::vector<std::pair<int, float>>{{3, 1.5f}, {17, -2.0f}}));
  auto message = [](const std::string& text) -> std::string {
    try {
      parse_splice_setting(text, "--where");
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  for (const std::string bad : {"clamp:3=1.5x", "clamp:x", "clamp:-1=2", "clamp:3", "clamp:3=nan", "clamp:2.5=1"})
    EXPECT_NE(message(bad).find("--where: '" + bad.substr(6) + "' is not F=V"), std::string::npos) << message(bad);
  EXPECT_NE(message("clamp:").find("--where: clamp names no feature"), std::string::npos) << message("clamp:");
  EXPECT_NE(message("zero").find("--where: 'zero' is not reconstruct, mean or clamp"), std::string::npos);
  const SpliceSetting on_state = parse_splice_setting("clamp:3=1.5@state", "x");
  EXPECT_EQ(on_state.clamp, (std::vector<std::pair<int, float>>{{3, 1.5f}}));
  EXPECT_EQ(on_state.rows, std::vector<TokenRegion>{TokenRegion::kState});
  EXPECT_EQ(parse_splice_setting("reconstruct@images+state", "x").rows,
            (std::vector<TokenRegion>{TokenRegion::kImages, TokenRegion::kState}));
  EXPECT_TRUE(parse_splice_setting("mean", "x").rows.empty());
  EXPECT_NE(message("clamp:3=1@nose").find("--where: 'nose' is not a kind of row"), std::string::npos);
  EXPECT_NE(message("mean@").find("--where: 'mean@' names no row after '@'"), std::string::npos);
}

TEST(Sae, LogitLensOfAWordsOwnEmbeddingIsThatWord) {
  TinyPolicy f("sae_lens");
  const SmolVLA& model = f.policy->model();
  const std::vector<int64_t> ids = f.policy->tokenizer().encode("high", false);
  ASSERT_EQ(ids.size(), 1u);
  const torch::Tensor row = model.output_embedding()[ids[0]].to(torch::kFloat32).contiguous();
  const std::vector<float> direction(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
  const std::vector<std::string> top = direction_top_tokens(model, f.policy->tokenizer(), direction, 3, false);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], "high");
}

TEST(Explorer, IndexesWhatAFolderHoldsAndSkipsWhatAStudyCouldNotCompute) {
  ScratchDir tmp("explorer");
  fs::create_directories(tmp.path / "steer");
  // A condition with too few lifts has null numbers; a set of 300 channels is a direction, listed once.
  std::ofstream(tmp.path / "steer" / "steer_report.json")
      << R"({"conditions": {"baseline": {"successes": 14, "rollouts": 20, "mean_height": {"mean": 7.41}},
                             "high": {"successes": 0, "rollouts": 20, "mean_height": {"mean": null}}},
            "vs_baseline_mean_height_cm": {"high": null}})";
  fs::create_directories(tmp.path / "neurons");
  std::string dense = R"({"format": "vlascope.neuron_sets", "version": 1, "sets": [
      {"name": "high", "neurons": [{"stream": "vlm", "layer": 2, "index": 7, "note": "above, high, top"}]},
      {"name": "dir", "neurons": [)";
  for (int i = 0; i < 300; ++i) dense += std::string(i ? "," : "") + R"({"stream": "vlm", "layer": 1, "index": )" + std::to_string(i) + "}";
  std::ofstream(tmp.path / "neurons" / "neuron_sets.json") << dense << "]}]}";
  fs::create_directories(tmp.path / "patch");
  std::ofstream(tmp.path / "patch" / "patch_report.json")
      << R"({"source_prompt": "lift it high", "target_prompt": "lift it", "effects": [
            {"spec": "vlm.layers.0.resid.post@last_word", "moved": 0.9534, "random_moved": null, "remaining": 0.01}]})";
  const ExplorerSummary s = write_explorer(tmp.path.string());
  EXPECT_EQ(s.patching_studies, 1);
  EXPECT_EQ(s.steering_studies, 1);
  EXPECT_EQ(s.neuron_sets, 2);
  EXPECT_EQ(s.neurons, 1);
  EXPECT_EQ(s.episodes, 0);
  ASSERT_TRUE(fs::exists(tmp.path / "explorer.html"));
  std::ifstream in(tmp.path / "explorer_index.js");
  const std::string index((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(index.rfind("vlascopeIndex(\"index\", ", 0), 0u) << index.substr(0, 80);
  EXPECT_NE(index.find(R"("note":"above, high, top")"), std::string::npos);
  EXPECT_NE(index.find(R"("channels":300)"), std::string::npos);
  EXPECT_NE(index.find(R"("mean_height_cm":7.41)"), std::string::npos);
  EXPECT_EQ(index.find("delta_cm"), std::string::npos) << "a null difference became a number";
  EXPECT_NE(index.find(R"("moved":0.9534,"remaining":0.01,"spec":"vlm.layers.0.resid.post@last_word")"), std::string::npos)
      << "the patching effect (its null random control left out)";
  std::ifstream page(tmp.path / "explorer.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_EQ(html.find("/*APP*/"), std::string::npos);
  EXPECT_NE(html.find("vlascopeEpisode"), std::string::npos) << "the page's code is not in it";
}

}  // namespace
}  // namespace vlascope
