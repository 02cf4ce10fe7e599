// A real SmolVLA policy small enough for unit tests (random weights, two 64×64 cameras of 2×2 tokens, a 16-word
// vocabulary), saved as a checkpoint in a scratch folder and loaded through Policy::load, with helpers for inputs
// and recorded demonstrations. Shared by the capture, SAE and rollout tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataset/dataset.h"
#include "policy/checkpoint.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "policy/tokenizer.h"

namespace vlascope {

struct TinyPolicyOptions {
  std::vector<std::string> words = {"pick", "up", "the", "cube", "high", "low", "fast"};
  float state_std = 1;  // the state's normalisation: 0 ± this, per joint
  std::vector<float> action_mean = std::vector<float>(6, 0.f), action_std = std::vector<float>(6, 1.f);
  int threads = 0;  // Policy's intra-op threads (0: all cores)
};

struct TinyPolicy {
  std::filesystem::path dir;
  std::unique_ptr<Policy> policy;
  explicit TinyPolicy(const std::string& name = "capture", const TinyPolicyOptions& options = {}) {
    namespace fs = std::filesystem;
    dir = fs::temp_directory_path() / ("vlascope_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    SmolVLAConfig c = smolvla_tiny_config();
    c.input_features = {{"observation.state", "STATE", {6}},
                        {"observation.images.scene", "VISUAL", {3, 64, 64}},
                        {"observation.images.wrist", "VISUAL", {3, 64, 64}}};
    c.output_features = {{"action", "ACTION", {6}}};
    c.resize_imgs_with_padding = {64, 64};
    c.n_action_steps = 5;
    const std::string tokenizer = word_level_tokenizer_json(options.words);
    c.text.vocab_size = 16;
    SmolVLA model(c);
    model.init_random(3);
    NormalizationStats stats;
    stats.features["observation.state"] = {std::vector<float>(6, 0.f), std::vector<float>(6, options.state_std), {}, {},
                                           {}, {}};
    stats.features["action"] = {options.action_mean, options.action_std, {}, {}, {}, {}};
    save_checkpoint(dir.string(), model, stats, SaveDtypes::kFloat32, tokenizer);
    PolicyOptions o;
    o.threads = options.threads;
    policy = Policy::load(dir.string(), o);
  }
  ~TinyPolicy() { std::filesystem::remove_all(dir); }
  // Demonstrations under dir/demos: frame i of episode e is input(60 + 20e + i) with the state moved by i;
  // `describe` names each episode's variant and success, `phase_of` each frame's phase.
  std::filesystem::path write_demos(int episodes, int frames, const std::function<void(int, EpisodeInfo&)>& describe,
                       const std::function<Phase(int)>& phase_of) const {
    const std::filesystem::path data = dir / "demos";
    DatasetWriter writer(data.string());
    for (int e = 0; e < episodes; ++e) {
      EpisodeInfo info;
      info.instruction = "pick up the cube";
      info.cameras = {"scene", "wrist"};
      describe(e, info);
      std::vector<Frame> recorded;
      for (int i = 0; i < frames; ++i) {
        const PolicyInput in = input(static_cast<uint8_t>(60 + 20 * e + i));
        Frame fr;
        fr.timestamp = i / 30.0;
        for (int j = 0; j < 6; ++j) fr.state[j] = in.state[static_cast<size_t>(j)] + i;
        fr.phase = phase_of(i);
        fr.images = in.images;
        recorded.push_back(fr);
      }
      writer.write(info, recorded);
    }
    return data;
  }
  PolicyInput input(uint8_t shade = 90) const {
    PolicyInput in;
    in.images["scene"] = Image(64, 64, 3, shade);
    in.images["wrist"] = Image(64, 64, 3, 200);
    for (int y = 10; y < 20; ++y)
      for (int x = 30; x < 44; ++x) in.images["scene"].at(x, y)[0] = 255;
    in.state = {1, -2, 3, 0, 5, 50};
    in.task = "pick up the cube";
    return in;
  }
};

}  // namespace vlascope
