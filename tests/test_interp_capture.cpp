// Capture, steering and neuron search on a real (small, random) policy: recording never changes the actions, maps
// know their token table, memory stays bounded, steering changes exactly the chosen activations, an empty steering
// changes nothing, bad neuron sets are errors, the logit lens matches a hand computation, and the choice contrast
// pairs each frame's higher- and lower-rising chunks, semantic embeddings match a hand computation, and a prompt
// difference is the mean change of each coefficient between two prompts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "dataset/dataset.h"
#include "hardware/robot.h"
#include "hardware/units.h"
#include "interp/attention_views.h"
#include "interp/capture.h"
#include "interp/neurons.h"
#include "interp/patching.h"
#include "interp/stats.h"
#include "policy/checkpoint.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "policy/tokenizer.h"
#include "tests/tiny_policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

using Fixture = TinyPolicy;

TEST(Capture, RecordingNeverChangesActionsAndMapsKnowTheirTokens) {
  Fixture f;
  Policy& p = *f.policy;
  const auto plain = p.predict_chunk(f.input(), 7, 0);
  AttentionCaptureSpec spec;
  spec.max_chunks = 2;
  AttentionRecorder rec(p, spec);
  ActivationRecorder acts(p);
  const auto recorded = p.predict_chunk(f.input(), 7, 0);
  EXPECT_EQ(plain, recorded);
  ASSERT_EQ(rec.chunks().size(), 1u);
  const CapturedChunk& c = rec.chunks().back();
  const int lp = c.layout.prefix_len;
  EXPECT_EQ(lp, 2 * 4 + 4 + 1);  // two 2×2 cameras, 4 words, the state
  EXPECT_EQ(c.layout.camera_names, (std::vector<std::string>{"scene", "wrist"}));
  const CapturedAttention* vlm = c.find(HookStream::kVlm, 0);
  ASSERT_NE(vlm, nullptr);
  EXPECT_EQ(vlm->pattern.keys, lp);
  EXPECT_EQ(vlm->pattern.queries, lp);
  EXPECT_EQ(vlm->pattern.heads, 4);
  // Expert: one map per denoising step; joint layers see the actions too.
  EXPECT_EQ(c.all(HookStream::kExpert, 0).size(), 10u);
  EXPECT_EQ(c.find(HookStream::kExpert, 0, 3)->pattern.keys, lp + 10);
  EXPECT_EQ(c.find(HookStream::kExpert, 1, 3)->pattern.keys, lp);
  EXPECT_EQ(c.find(HookStream::kExpert, 0, 3)->query_positions.front(), lp);  // action 0 sits after the prefix
  // Every captured row is a distribution.
  for (const CapturedAttention& a : c.maps)
    for (int h = 0; h < a.pattern.heads; ++h)
      for (int q = 0; q < a.pattern.queries; ++q) {
        double s = 0;
        for (int k = 0; k < a.pattern.keys; ++k) s += a.pattern.at(h, q, k);
        ASSERT_NEAR(s, 1.0, 1e-4) << a.point.name();
      }
  // Activations: every VLM layer and expert layer, FFN width each.
  ASSERT_EQ(acts.chunks().size(), 1u);
  EXPECT_EQ(acts.chunks()[0].vlm_mean.size(), 4u);
  EXPECT_EQ(acts.chunks()[0].expert_mean.at(2).size(), 256u);
  // The ring stays bounded.
  for (int k = 1; k < 5; ++k) p.predict_chunk(f.input(), 7, k);
  EXPECT_EQ(rec.chunks().size(), 2u);
  EXPECT_EQ(rec.chunks().back().index, 4);
}

TEST(Capture, SpecSelectsLayersHeadsStepsAndQueries) {
  Fixture f;
  AttentionCaptureSpec spec;
  spec.vlm_layers = {2};
  spec.expert_layers = {1};
  spec.heads = {1, 3};
  spec.steps = {9};
  spec.vlm_queries = AttentionCaptureSpec::VlmQueries::kLastWordAndState;
  size_t bytes_small = 0;
  {
    AttentionRecorder rec(*f.policy, spec);
    f.policy->predict_chunk(f.input(), 1, 0);
    const CapturedChunk& c = rec.chunks().back();
    EXPECT_EQ(c.maps.size(), 2u);  // one VLM layer, one expert step
    const CapturedAttention* v = c.find(HookStream::kVlm, 2);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->heads, (std::vector<int>{1, 3}));
    EXPECT_EQ(v->query_positions, (std::vector<int>{last_language_token(c.layout), state_token(c.layout)}));
    EXPECT_EQ(c.find(HookStream::kExpert, 1)->step, 9);
    bytes_small = rec.bytes();
  }
  AttentionRecorder all(*f.policy);
  f.policy->predict_chunk(f.input(), 1, 0);
  EXPECT_GT(all.bytes(), 20 * bytes_small);
  // Views of the full capture: fused heads of one layer equal the mean of the per-head maps.
  MapRequest r;
  r.stream = HookStream::kVlm;
  r.layers = {1};
  const AttentionView view = attention_view(all.chunks().back(), r);
  ASSERT_EQ(view.cameras.size(), 2u);
  const std::vector<GridMap> heads = head_maps(all.chunks().back(), HookStream::kVlm, 1, QueryChoice::kLastWord, 0);
  ASSERT_EQ(heads.size(), 4u);
  EXPECT_EQ(view.cameras[0].map.size(), 4);
  double total = 0;
  for (float v : view.cameras[0].map.values) total += v;
  EXPECT_NEAR(total, 1.0, 1e-5);
  MapRequest rollout = r;
  rollout.layers = {0, 1, 2, 3};
  rollout.rollout = true;
  EXPECT_NO_THROW(attention_view(all.chunks().back(), rollout));
  MapRequest missing = r;
  missing.layers = {7};
  EXPECT_THROW(attention_view(all.chunks().back(), missing), Error);
}

// A channel restricted to one kind of prefix row changes exactly those rows: the word rows here, then the state row.
TEST(Steering, ATokenRegionReachesOnlyItsRows) {
  Fixture f;
  Policy& p = *f.policy;
  torch::Tensor before, after;
  auto record = [&](torch::Tensor& into) {
    HookHandle h = p.hooks().add("vlm.layers.1.mlp.post", [&](const HookContext& ctx, at::Tensor& t) {
      if (ctx.pass == ForwardPass::kPrefix) into = t.select(0, 0).clone();  // [Lp, I]
    });
    p.predict_chunk(f.input(), 3, 0);
    h.reset();
  };
  record(before);
  for (TokenRegion region : {TokenRegion::kWords, TokenRegion::kState, TokenRegion::kLastWord}) {
    NeuronSet set{"words", "", {}, {{Stream::kVlm, 1, 5, ""}}};
    set.neurons[0].tokens = region;
    {
      Steering steer(p.model(), {set}, {Intervention{"words", InterventionOp::kSet, 7.0}});
      record(after);  // registered after the steering hook: sees its result
    }
    const PrefixLayout& layout = p.layout();
    ASSERT_GT(layout.language_len, 0);
    for (int row = 0; row < before.size(0); ++row) {
      const bool reached = region == TokenRegion::kWords
                               ? row >= layout.language_begin && row < layout.language_begin + layout.language_len
                           : region == TokenRegion::kState ? row == layout.state_index
                                                           : row == last_language_token(layout);
      for (int channel = 0; channel < before.size(1); ++channel) {
        const float expected = reached && channel == 5 ? 7.f : before[row][channel].item<float>();
        ASSERT_EQ(after[row][channel].item<float>(), expected) << token_region_name(region) << " row " << row;
      }
    }
  }
}

TEST(Steering, RowGainsScaleAlphaPerBatchRow) {
  Fixture f;
  Policy& p = *f.policy;
  PolicyInput a = f.input(), b = f.input();
  b.state[0] += 5;
  torch::Tensor recorded;
  auto record = [&] {
    HookHandle h = p.hooks().add("vlm.layers.1.mlp.post", [&](const HookContext& ctx, at::Tensor& t) {
      if (ctx.pass == ForwardPass::kPrefix) recorded = t.clone();  // [2, Lp, I]
    });
    p.predict_chunks({&a, &b}, {{3, 0}, {4, 0}});
    h.reset();
    return recorded;
  };
  const torch::Tensor plain = record();
  NeuronSet set{"push", "", {}, {{Stream::kVlm, 1, 5, ""}}};
  Steering steer(p.model(), {set}, {Intervention{"push", InterventionOp::kAdd, 3.0}});
  steer.set_row_gains({0.f, 2.f});
  const torch::Tensor steered = record();
  EXPECT_TRUE(torch::equal(steered[0], plain[0])) << "gain 0: row 0 untouched";
  torch::Tensor expected = plain[1].clone();
  expected.select(-1, 5) += 6;  // α 3 × gain 2 on channel 5, every position
  EXPECT_TRUE(torch::allclose(steered[1], expected, 0, 1e-5));
  steer.set_row_gains({1.f});  // one gain for a batch of two
  EXPECT_THROW(p.predict_chunks({&a, &b}, {{3, 0}, {4, 0}}), Error);
  steer.set_row_gains({});
  EXPECT_NO_THROW(p.predict_chunks({&a, &b}, {{3, 0}, {4, 0}}));
}

TEST(Steering, AResidualChannelIsAddedToTheResidualStreamAndReachesLaterLayers) {
  Fixture f;
  Policy& p = *f.policy;
  torch::Tensor before, after, later_before, later_after;
  auto record = [&](torch::Tensor& into, torch::Tensor& later) {
    HookHandle h = p.hooks().add("vlm.layers.1.resid.post", [&](const HookContext& ctx, at::Tensor& t) {
      if (ctx.pass == ForwardPass::kPrefix) into = t.select(0, 0).clone();  // [Lp, D]
    });
    HookHandle h2 = p.hooks().add("vlm.layers.2.mlp.post", [&](const HookContext& ctx, at::Tensor& t) {
      if (ctx.pass == ForwardPass::kPrefix) later = t.select(0, 0).clone();
    });
    p.predict_chunk(f.input(), 3, 0);
    h.reset();
    h2.reset();
  };
  record(before, later_before);
  NeuronSet set{"resid", "", {}, {{Stream::kVlm, 1, 4, "", 0.5}}};
  set.neurons[0].tokens = TokenRegion::kWords;
  set.neurons[0].site = ChannelSite::kResidPost;
  {
    Steering steer(p.model(), {set}, {Intervention{"resid", InterventionOp::kAdd, 3.0}});
    EXPECT_EQ(steer.hooked_layers(), 1);
    record(after, later_after);
  }
  const PrefixLayout& layout = p.layout();
  for (int row = 0; row < before.size(0); ++row) {
    const bool word = row >= layout.language_begin && row < layout.language_begin + layout.language_len;
    for (int channel = 0; channel < before.size(1); ++channel) {
      const float expected = before[row][channel].item<float>() + (word && channel == 4 ? 1.5f : 0.f);
      ASSERT_NEAR(after[row][channel].item<float>(), expected, 1e-6) << "row " << row << " channel " << channel;
    }
  }
  EXPECT_GT((later_after - later_before).abs().max().item<float>(), 1e-4);  // the next layer reads the change
  // An index beyond the residual width (the model's hidden size) is refused, naming the width.
  set.neurons[0].index = p.config().text.hidden;
  std::string e;
  try {
    Steering steer(p.model(), {set}, {Intervention{"resid", InterventionOp::kAdd, 1.0}});
  } catch (const Error& error) {
    e = error.what();
  }
  EXPECT_NE(e.find("out of range (residual width " + std::to_string(p.config().text.hidden) + ")"), std::string::npos)
      << e;
}

TEST(Steering, OverridesExactlyTheChosenNeuronsAndNothingWhenEmpty) {
  Fixture f;
  Policy& p = *f.policy;
  const auto plain = p.predict_chunk(f.input(), 3, 0);
  NeuronSet set{"high", "", {}, {{Stream::kVlm, 1, 5, ""}, {Stream::kVlm, 1, 200, ""}, {Stream::kExpert, 2, 9, ""}}};
  std::vector<NeuronSet> sets = {set};
  {
    Steering none(p.model(), sets, {});
    EXPECT_EQ(none.hooked_layers(), 0);
    EXPECT_EQ(p.predict_chunk(f.input(), 3, 0), plain);  // no set → identical actions
  }
  // The activations of VLM layer 1 with and without steering: only channels 5 and 200 differ, and they hold α.
  ActivationRecorder before(p, true, false, {1});
  p.predict_chunk(f.input(), 3, 0);
  const std::vector<float> a = before.chunks().back().vlm_state.at(1);
  std::vector<float> b;
  std::vector<std::vector<float>> steered;
  {
    Steering steer(p.model(), sets, {Intervention{"high", InterventionOp::kSet, 6.0}});
    EXPECT_EQ(steer.hooked_layers(), 2);
    ActivationRecorder after(p, true, false, {1});  // registered after the steering hook: sees its result
    steered = p.predict_chunk(f.input(), 3, 0);
    b = after.chunks().back().vlm_state.at(1);
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (i == 5 || i == 200) {
      EXPECT_FLOAT_EQ(b[i], 6.f);
    } else {
      ASSERT_EQ(a[i], b[i]) << i;
    }
  }
  EXPECT_NE(steered, plain);
  EXPECT_EQ(p.predict_chunk(f.input(), 3, 0), plain);  // the hooks are gone with the Steering
  // Add and scale.
  {
    Steering add(p.model(), sets, {Intervention{"high", InterventionOp::kAdd, 0.0}});
    EXPECT_EQ(p.predict_chunk(f.input(), 3, 0), plain);  // +0 is the identity
  }
  {
    Steering scale(p.model(), sets, {Intervention{"high", InterventionOp::kScale, 1.0}});
    EXPECT_EQ(p.predict_chunk(f.input(), 3, 0), plain);  // ×1 is the identity
  }
  // A weighted set (a direction): each channel moves by α × its weight; set gives α × weight.
  {
    std::vector<NeuronSet> direction = {
        {"dir", "", {}, {{Stream::kVlm, 1, 5, "", 2.0}, {Stream::kVlm, 1, 200, "", -0.5}}}};
    for (InterventionOp op : {InterventionOp::kAdd, InterventionOp::kSet}) {
      Steering steer(p.model(), direction, {Intervention{"dir", op, 3.0}});
      ActivationRecorder after(p, true, false, {1});
      p.predict_chunk(f.input(), 3, 0);
      const std::vector<float> c = after.chunks().back().vlm_state.at(1);
      const bool add = op == InterventionOp::kAdd;
      if (!add) {  // every position, not only the state token: the mean over the prefix holds α × weight too
        EXPECT_NEAR(after.chunks().back().vlm_mean.at(1)[5], 6.f, 1e-5);
        EXPECT_NEAR(after.chunks().back().vlm_mean.at(1)[200], -1.5f, 1e-5);
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (i == 5) {
          EXPECT_NEAR(c[i], (add ? a[i] : 0.f) + 6.f, 1e-5);
        } else if (i == 200) {
          EXPECT_NEAR(c[i], (add ? a[i] : 0.f) - 1.5f, 1e-5);
        } else {
          ASSERT_EQ(a[i], c[i]) << i;
        }
      }
    }
  }
  // A set that names a layer or index the model does not have.
  std::vector<NeuronSet> bad = {{"bad", "", {}, {{Stream::kVlm, 9, 0, ""}}}};
  EXPECT_THROW(Steering(p.model(), bad, {Intervention{"bad", InterventionOp::kSet, 1}}), Error);
  bad = {{"bad", "", {}, {{Stream::kExpert, 0, 256, ""}}}};
  EXPECT_THROW(Steering(p.model(), bad, {Intervention{"bad", InterventionOp::kSet, 1}}), Error);
  EXPECT_THROW(Steering(p.model(), sets, {Intervention{"missing", InterventionOp::kSet, 1}}), Error);
}

TEST(Neurons, LogitLensMatchesAHandComputationAndFindsAPlantedConcept) {
  Fixture f;
  SmolVLA& model = f.policy->model();
  const Tokenizer& tok = f.policy->tokenizer();
  const int64_t high = *tok.id("high");
  {
    // Plant: neuron (2, 17)'s value vector is lm_head's row of "high" → "high" must be its top token.
    torch::NoGradGuard no_grad;
    SmolVLAWeights& w = model.mutable_weights();
    w.vlm_layers[2].down.weight.select(1, 17).copy_(w.lm_head.weight[high] * 10);
  }
  const std::vector<NeuronTokens> tops = value_vector_top_tokens(model, tok, 3, false);
  ASSERT_EQ(tops.size(), 4u * 256);
  const NeuronTokens& planted = tops[2 * 256 + 17];
  EXPECT_EQ(planted.ids[0], high);
  // Hand computation for another neuron: logits = lm_head · down[:, i], top token = argmax over non-special ids.
  const NeuronTokens& other = tops[1 * 256 + 40];
  const torch::Tensor logits =
      torch::mv(model.weights().lm_head.weight, model.weights().vlm_layers[1].down.weight.select(1, 40));
  for (int64_t s = 0; s < 4; ++s) logits[s] = -1e30;  // [PAD] [UNK] [BOS] [EOS]
  EXPECT_EQ(other.ids[0], logits.argmax().item<int64_t>());
  EXPECT_NEAR(other.logits[0], logits.max().item<double>(), 1e-4);
  const std::vector<ConceptScore> scores = search_concept(model, tok, {"high"}, 3, false);
  ASSERT_FALSE(scores.empty());
  EXPECT_EQ(scores[0].layer, 2);
  EXPECT_EQ(scores[0].index, 17);
  EXPECT_EQ(scores[0].best_rank, 1);
  EXPECT_TRUE(scores[0].exact);
  for (size_t i = 1; i < scores.size(); ++i) ASSERT_LE(scores[i].z, scores[i - 1].z);
  const NeuronSet set = concept_set(scores, "high", 5, "test", {"high"});
  EXPECT_EQ(set.neurons.size(), 5u);
  EXPECT_EQ(set.neurons[0].index, 17);
  EXPECT_THROW(search_concept(model, tok, {"elephant"}, 3, false), Error);
  // Through the final norm the ranking may change but the planted neuron still wins.
  EXPECT_EQ(value_vector_top_tokens(model, tok, 3, true)[2 * 256 + 17].ids[0], high);
}

// A kinematic model whose end effector is (q0, 0, q1): heights and paths a test can compute by hand.
struct LinearKinematics : KinematicModel {
  Pose forward(const JointVector& q) override {
    Pose p;
    p.position = {q[0], 0, q[1]};
    return p;
  }
};

TEST(Neurons, ChunkOutcomeIsTheRiseAndThePathPerStepOfTheEndEffector) {
  LinearKinematics k;
  const UnitMapping units;
  const std::vector<float> state = {0, 10, 0, 0, 0, 50};
  const std::vector<std::vector<float>> chunk = {{0, 20, 0, 0, 0, 50}, {0, 40, 0, 0, 0, 50}, {0, 30, 0, 0, 0, 50}};
  auto z = [&](float lift_degrees) {
    JointVector q{};
    q[1] = lift_degrees;
    return from_lerobot(q, units)[1];
  };
  EXPECT_NEAR(chunk_outcome(chunk, state, k, units, ChunkOutcome::kRise), std::abs(z(40) - z(10)), 1e-9);
  // Path: 10° + 20° + 10° of lift over three steps.
  EXPECT_NEAR(chunk_outcome(chunk, state, k, units, ChunkOutcome::kSpeed), std::abs(z(40) - z(0)) / 3, 1e-9);
  EXPECT_THROW(chunk_outcome({}, state, k, units, ChunkOutcome::kRise), Error);
  EXPECT_THROW(chunk_outcome({{1, 2, 3}}, state, k, units, ChunkOutcome::kRise), Error);
}

TEST(Neurons, ChoiceContrastPairsEachFramesHigherAndLowerChunksInTheExpert) {
  Fixture f;
  const fs::path data = f.write_demos(
      3, 8,
      [](int e, EpisodeInfo& info) {
        info.variant = e % 2 ? "high" : "low";
        info.success = true;
      },
      [](int i) { return i < 2 ? Phase::kGrasp : Phase::kLift; });  // 6 lift frames
  const DatasetReader dataset(data.string());
  LinearKinematics k;
  ChoiceContrastOptions o;
  o.outcomes = {ChunkOutcome::kRise};
  o.phase = Phase::kLift;
  o.frame_stride = 2;
  o.samples_per_frame = 6;
  o.seed = 11;
  const std::vector<ChoiceContrast> only_rise = contrast_neurons_by_choice(*f.policy, dataset, k, o);
  ASSERT_EQ(only_rise.size(), 1u);
  const ChoiceContrast& c = only_rise.front();
  EXPECT_EQ(c.outcome, ChunkOutcome::kRise);
  EXPECT_EQ(c.frames, 3 * 3);
  const SmolVLAConfig& cfg = f.policy->config();
  ASSERT_EQ(c.neurons.size(),
            model_shape(cfg).expert.layers.size() * static_cast<size_t>(model_shape(cfg).expert.ffn_width));
  for (size_t i = 0; i < c.neurons.size(); ++i) {
    const NeuronContrast& x = c.neurons[i];
    ASSERT_EQ(x.stream, Stream::kExpert);
    if (i) {
      ASSERT_LE(std::abs(x.g), std::abs(c.neurons[i - 1].g));
    }
    // d_z is the mean paired difference over its sd: its sign is that of mean_upper − mean_lower.
    if (x.g != 0) {
      ASSERT_EQ(x.g > 0, x.mean_a > x.mean_b) << x.layer << "/" << x.index;
    }
  }
  EXPECT_GT(c.outcome_sd_within, 0);  // the noise changes the chunks
  // Consistency, through a second computation on the same frames and seeds (a correlation instead of halves): the
  // strongest neuron's coefficient goes with the outcome in the direction of its d_z.
  const NeuronContrast& top = c.neurons.front();
  ActivationRecorder recorder(*f.policy, false, true);
  std::vector<double> act, out;
  int frame_number = 0;
  for (int e = 0; e < 3; ++e)
    for (int i = 2; i < 8; i += 2, ++frame_number) {
      const Frame fr = dataset.frame(e, i);
      PolicyInput in;
      in.images = fr.images;
      in.state.assign(fr.state.begin(), fr.state.end());
      in.task = "pick up the cube";
      std::vector<double> a, y;
      for (int s = 0; s < 6; ++s) {
        recorder.clear();
        const auto chunk = f.policy->predict_chunk(in, o.seed + frame_number, s);
        y.push_back(chunk_outcome(chunk, in.state, k, o.units, ChunkOutcome::kRise));
        a.push_back(recorder.chunks().back().expert_mean.at(top.layer)[static_cast<size_t>(top.index)]);
      }
      for (int s = 0; s < 6; ++s) act.push_back(a[s] - mean(a)), out.push_back(y[s] - mean(y));
    }
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t s = 0; s < act.size(); ++s) sxy += act[s] * out[s], sxx += act[s] * act[s], syy += out[s] * out[s];
  const double r = sxy / std::sqrt(sxx * syy);
  EXPECT_GT(r * (top.g > 0 ? 1 : -1), 0.3) << "r " << r << ", d_z " << top.g;
  // Sets take the strongest neurons of one sign.
  const NeuronSet high = choice_set(c, "high_choice", 4, +1, "test", o);
  ASSERT_EQ(high.neurons.size(), 4u);
  for (const NeuronRef& n : high.neurons) EXPECT_EQ(n.stream, Stream::kExpert);
  // Two outcomes from one pass over the same chunks: the rise contrast is the one computed alone, the speed
  // contrast ranks the chunks its own way.
  o.outcomes = {ChunkOutcome::kRise, ChunkOutcome::kSpeed};
  const std::vector<ChoiceContrast> both = contrast_neurons_by_choice(*f.policy, dataset, k, o);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].outcome, ChunkOutcome::kRise);
  EXPECT_EQ(both[1].outcome, ChunkOutcome::kSpeed);
  EXPECT_EQ(both[1].frames, c.frames);
  ASSERT_EQ(both[0].neurons.size(), c.neurons.size());
  for (size_t i = 0; i < c.neurons.size(); ++i) {
    ASSERT_EQ(both[0].neurons[i].index, c.neurons[i].index);
    ASSERT_EQ(both[0].neurons[i].g, c.neurons[i].g);
  }
  EXPECT_NE(both[1].outcome_mean, c.outcome_mean);
  bool speed_differs = false;
  for (size_t i = 0; i < c.neurons.size() && !speed_differs; ++i)
    speed_differs = both[1].neurons[i].layer != c.neurons[i].layer || both[1].neurons[i].index != c.neurons[i].index ||
                    both[1].neurons[i].g != c.neurons[i].g;
  EXPECT_TRUE(speed_differs);
  const NeuronSet fast = choice_set(both[1], "fast_choice", 4, +1, "test", o);
  EXPECT_NE(fast.description.find("move more"), std::string::npos) << fast.description;
  // Bad options are errors, not crashes.
  o.outcomes = {};
  EXPECT_THROW(contrast_neurons_by_choice(*f.policy, dataset, k, o), Error);
  o.outcomes = {ChunkOutcome::kRise};
  o.samples_per_frame = 2;
  EXPECT_THROW(contrast_neurons_by_choice(*f.policy, dataset, k, o), Error);
  o.samples_per_frame = 6;
  o.phase = Phase::kHold;
  EXPECT_THROW(contrast_neurons_by_choice(*f.policy, dataset, k, o), Error);
}

TEST(Neurons, OppositeConceptFilterDropsNeuronsThatPromoteBothWords) {
  auto score = [](int layer, int index, double z) {
    ConceptScore s;
    s.layer = layer, s.index = index, s.z = z;
    return s;
  };
  const std::vector<ConceptScore> fast = {score(5, 504, 3.7), score(0, 242, 2.8), score(4, 304, 3.0)};
  const std::vector<ConceptScore> slow = {score(5, 504, 3.9), score(0, 242, 0.1), score(4, 304, 3.0)};
  const std::vector<ConceptScore> kept = without_opposite(fast, slow);
  ASSERT_EQ(kept.size(), 1u);  // 5/504 promotes "slowly" more, 4/304 as much
  EXPECT_EQ(kept[0].index, 242);
  EXPECT_EQ(without_opposite(fast, {}).size(), 3u);
}

TEST(Neurons, WordDirectionIsTheScaledEmbeddingDifferenceAndSetsWriteTheirValueVectors) {
  Fixture f;
  const SmolVLA& model = f.policy->model();
  const Tokenizer& tok = f.policy->tokenizer();
  const int64_t high = *tok.id("high"), low = *tok.id("low");
  const torch::Tensor embed = model.weights().embed_tokens.to(torch::kFloat32);
  const int64_t hidden = model.config().text.hidden;
  const std::vector<float> d = word_difference(model, tok, "high", "low");
  ASSERT_EQ(static_cast<int64_t>(d.size()), hidden);
  for (const int64_t c : {int64_t{0}, int64_t{7}, hidden - 1})
    EXPECT_NEAR(d[static_cast<size_t>(c)],
                (embed[high][c].item<double>() - embed[low][c].item<double>()) * std::sqrt(double(hidden)), 1e-5);
  try {
    word_difference(model, tok, "high", "aloft");  // not in the 7-word vocabulary
    ADD_FAILURE() << "a word the vocabulary lacks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'aloft'"), std::string::npos) << e.what();
  }
  // Two neurons of different layers, one weighted: 2 · down₀[:, 3] + down₁[:, 5].
  const NeuronSet set{"pair", "", {}, {{Stream::kVlm, 0, 3, "", 2.0}, {Stream::kVlm, 1, 5, ""}}};
  const std::vector<float> w = set_write_direction(model, set);
  const torch::Tensor d0 = model.weights().vlm_layers[0].down.weight.to(torch::kFloat32);
  const torch::Tensor d1 = model.weights().vlm_layers[1].down.weight.to(torch::kFloat32);
  for (const int64_t c : {int64_t{1}, int64_t{40}})
    EXPECT_NEAR(w[static_cast<size_t>(c)], 2 * d0[c][3].item<double>() + d1[c][5].item<double>(), 1e-6);
  EXPECT_THROW(set_write_direction(model, {"e", "", {}, {{Stream::kExpert, 0, 3, ""}}}), Error);
  EXPECT_THROW(set_write_direction(model, {"far", "", {}, {{Stream::kVlm, 0, 100000, ""}}}), Error);
  NeuronRef resid{Stream::kVlm, 0, 3, ""};
  resid.site = ChannelSite::kResidPost;
  try {
    set_write_direction(model, {"r", "", {}, {resid}});
    ADD_FAILURE() << "a residual channel has no value vector";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vlm.layers.0.resid.post channel 3"), std::string::npos) << e.what();
  }
  EXPECT_NEAR(norm({3, 4}), 5, 1e-12);
  EXPECT_NEAR(cosine({1, 0}, {1, 1}), 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(cosine({1, 2}, {-2, -4}), -1, 1e-12);
  EXPECT_EQ(cosine({0, 0}, {1, 1}), 0);
  EXPECT_THROW(cosine({1}, {1, 2}), Error);
  // As a residual set: one weighted channel per non-zero value, at resid.post on the chosen rows.
  const NeuronSet r = residual_direction_set({0.5f, 0, -2}, "word_x", 1, TokenRegion::kLastWord, "d", "m", "ckpt");
  ASSERT_EQ(r.neurons.size(), 2u);
  EXPECT_EQ(r.neurons[1].index, 2);
  EXPECT_EQ(r.neurons[1].weight, -2);
  EXPECT_EQ(r.neurons[1].site, ChannelSite::kResidPost);
  EXPECT_EQ(r.neurons[1].tokens, TokenRegion::kLastWord);
  EXPECT_EQ(r.neurons[1].layer, 1);
}

TEST(Neurons, OnlyLayersKeepsTheNamedLayersInTheirOrder) {
  auto score = [](int layer, int index) {
    ConceptScore s;
    s.layer = layer, s.index = index;
    return s;
  };
  const std::vector<ConceptScore> scores = {score(5, 1), score(1, 2), score(0, 3), score(3, 4), score(1, 5)};
  std::vector<int> kept;
  for (const ConceptScore& s : only_layers(scores, {0, 1})) kept.push_back(s.index);
  EXPECT_EQ(kept, (std::vector<int>{2, 3, 5}));
  EXPECT_EQ(only_layers(scores, {}).size(), scores.size());  // no layers named: every layer
  EXPECT_TRUE(only_layers(scores, {4}).empty());
}

TEST(Neurons, SemanticEmbeddingIsTheSoftmaxWeightedMeanOfTheTopTokens) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::vector<float>> embeddings = {{1, 0}, {0, 1}, {5, 5}, {-1, 2}};
  // Row 0: top two are token 1 (3) and token 3 (2), weights softmax(3, 2); token 2 is a special token (−∞).
  // Row 1: token 2 wins by far; with k = 2 the runner-up (token 0) gets e^−10 of its weight.
  const std::vector<std::vector<float>> logits = {{1, 3, -inf, 2}, {0, -inf, 10, -inf}};
  const std::vector<std::vector<float>> s = semantic_embeddings(logits, embeddings, 2);
  ASSERT_EQ(s.size(), 2u);
  const double w1 = std::exp(3.0) / (std::exp(3.0) + std::exp(2.0)), w3 = 1 - w1;
  EXPECT_NEAR(s[0][0], w1 * 0 + w3 * -1, 1e-6);
  EXPECT_NEAR(s[0][1], w1 * 1 + w3 * 2, 1e-6);
  const double v2 = 1 / (1 + std::exp(-10.0));
  EXPECT_NEAR(s[1][0], v2 * 5 + (1 - v2) * 1, 1e-5);
  EXPECT_NEAR(s[1][1], v2 * 5, 1e-5);
  // k = 1: the top token's embedding itself.
  EXPECT_NEAR(semantic_embeddings(logits, embeddings, 1)[0][1], 1, 1e-6);
  EXPECT_THROW(semantic_embeddings({{1, 2}}, embeddings, 2), Error);  // 2 logits for 4 embeddings
}

TEST(Neurons, SemanticSetAndFilterRankByTheCosineNotTheZ) {
  auto score = [](int index, double z, double semantic) {
    ConceptScore s;
    s.layer = 1, s.index = index, s.z = z, s.semantic = semantic;
    s.top_tokens = {"raised", "aloft"};
    return s;
  };
  const std::vector<ConceptScore> high = {score(1, 4.0, 0.1), score(2, 3.0, 0.9), score(3, 2.0, 0.5)};
  const std::vector<ConceptScore> low = {score(1, 1.0, 0.3), score(2, 3.5, 0.2), score(3, 0.5, 0.7)};
  const NeuronSet set = semantic_set(high, "high_semantic", 2, "test", {"high"});
  ASSERT_EQ(set.neurons.size(), 2u);
  EXPECT_EQ(set.neurons[0].index, 2);
  EXPECT_EQ(set.neurons[1].index, 3);
  EXPECT_NE(set.neurons[0].note.find("raised aloft"), std::string::npos) << set.neurons[0].note;
  // By z, neuron 2 promotes "low" more and goes; by the cosine, neuron 3 is nearer "low" and goes.
  std::vector<int> by_z, by_cosine;
  for (const ConceptScore& s : without_opposite(high, low)) by_z.push_back(s.index);
  for (const ConceptScore& s : without_opposite(high, low, true)) by_cosine.push_back(s.index);
  EXPECT_EQ(by_z, (std::vector<int>{1, 3}));
  EXPECT_EQ(by_cosine, (std::vector<int>{2}));
}

// One prefix pass; the value of `channel` at hook point `point`, averaged by hand over the real (not padding) word rows.
double word_rows_mean(Policy& policy, const PolicyInput& in, const std::string& point, int channel) {
  torch::Tensor values;  // [Lp]
  HookHandle h = policy.hooks().add(point, [&](const HookContext& ctx, at::Tensor& t) {
    if (ctx.pass == ForwardPass::kPrefix) values = t.select(0, 0).select(1, channel).clone();
  });
  policy.predict_chunk(in, 0, 0);
  h.reset();
  const PrefixLayout& layout = policy.layout();
  double sum = 0;
  int count = 0;
  for (int p = layout.language_begin; p < layout.language_begin + layout.language_len; ++p)
    if (!layout.tokens[0][p].padding) sum += values[p].item<double>(), ++count;
  return sum / count;
}

TEST(Neurons, PromptDifferenceIsTheMeanCoefficientChangeBetweenTwoPrompts) {
  Fixture f;
  const fs::path data = f.write_demos(
      3, 7,
      [](int e, EpisodeInfo& info) {
        info.variant = "high";
        info.success = e != 1;  // the failed episode is skipped
      },
      [](int) { return Phase::kUnknown; });
  const DatasetReader dataset(data.string());
  PromptDirectionOptions o;
  o.prompt_a = "pick up the cube high";
  o.prompt_b = "pick up the cube low";
  o.vlm_layers = {1, 3};
  o.frame_stride = 3;  // frames 0, 3, 6 of episodes 0 and 2
  const PromptDirection d = prompt_difference(*f.policy, dataset, o);
  EXPECT_EQ(d.frames, 6);
  ASSERT_EQ(d.parts.size(), 5u);  // all rows, images, words, state, the last word
  ASSERT_EQ(d.all().difference.size(), 2u);
  ASSERT_EQ(d.all().difference.count(1), 1u);
  ASSERT_EQ(d.all().difference.at(3).size(), 256u);
  EXPECT_GT(d.all().difference_norm, 0);
  EXPECT_GT(d.all().spread_norm, 0);
  // The words differ at their own rows: there the difference is larger than averaged over every row.
  EXPECT_GT(d.parts.at(TokenRegion::kWords).difference_norm, d.all().difference_norm);
  // Hand computation for one channel: the recorder's means under each prompt, frame by frame — over every row, and
  // over the word rows (the layout's language tokens that are not padding).
  {
    ActivationRecorder recorder(*f.policy, true, false, {3});
    double sum = 0, sum_words = 0, sum_words_by_hand = 0;
    for (int e : {0, 2})
      for (int i = 0; i < 7; i += 3) {
        PolicyInput in = frame_input(dataset.frame(e, i), o.prompt_a);
        double under[2], words[2], by_hand[2];
        for (int which = 0; which < 2; ++which) {
          in.task = which == 0 ? o.prompt_a : o.prompt_b;
          recorder.clear();
          by_hand[which] = word_rows_mean(*f.policy, in, "vlm.layers.3.mlp.post", 100);  // the recorder sees this run
          under[which] = recorder.chunks().back().vlm_mean.at(3)[100];
          words[which] = recorder.chunks().back().vlm_words.at(3)[100];
        }
        sum += under[0] - under[1];
        sum_words += words[0] - words[1];
        sum_words_by_hand += by_hand[0] - by_hand[1];
      }
    EXPECT_NEAR(d.all().difference.at(3)[100], sum / 6, 1e-6);
    EXPECT_NEAR(d.parts.at(TokenRegion::kWords).difference.at(3)[100], sum_words / 6, 1e-6);
    EXPECT_NEAR(sum_words, sum_words_by_hand, 1e-4);
  }
  // Swapping the prompts negates the direction.
  std::swap(o.prompt_a, o.prompt_b);
  const PromptDirection swapped = prompt_difference(*f.policy, dataset, o);
  for (int layer : {1, 3})
    for (size_t k = 0; k < 256; ++k)
      ASSERT_NEAR(swapped.all().difference.at(layer)[k], -d.all().difference.at(layer)[k], 1e-9);
  std::swap(o.prompt_a, o.prompt_b);
  // As a set: the n channels of largest |difference|, weighted by it, in layer order.
  const NeuronSet set = prompt_direction_set(d, "prompt_rise", 5, "test", o);
  ASSERT_EQ(set.neurons.size(), 5u);
  double smallest_kept = 1e30;
  for (const NeuronRef& n : set.neurons) {
    EXPECT_EQ(n.stream, Stream::kVlm);
    EXPECT_EQ(n.tokens, TokenRegion::kAll);
    EXPECT_DOUBLE_EQ(n.weight, d.all().difference.at(n.layer)[static_cast<size_t>(n.index)]);
    smallest_kept = std::min(smallest_kept, std::abs(n.weight));
  }
  int larger = 0;
  for (const auto& [layer, diff] : d.all().difference)
    for (double x : diff) larger += std::abs(x) > smallest_kept;
  EXPECT_EQ(larger, 4);
  EXPECT_EQ(prompt_direction_set(d, "all", 0, "test", o).neurons.size(), 512u);
  // Per kind of row: each entry weighted by its own part's difference, and acting on those rows only.
  const NeuronSet per_kind = prompt_direction_set(d, "prompt_rise_tokens", 0, "test", o, per_token_kind_regions());
  EXPECT_EQ(per_kind.neurons.size(), 3 * 512u);
  for (const NeuronRef& n : per_kind.neurons) {
    ASSERT_NE(n.tokens, TokenRegion::kAll);
    ASSERT_DOUBLE_EQ(n.weight, d.parts.at(n.tokens).difference.at(n.layer)[static_cast<size_t>(n.index)]);
  }
  validate_neuron_set(per_kind, model_shape(f.policy->config()));
  // On the residual stream: the same mean change of resid.post's word rows, one layer at a time.
  PromptDirectionOptions ro = o;
  ro.site = ChannelSite::kResidPost;
  const PromptDirection resid = prompt_difference(*f.policy, dataset, ro);
  const int hidden = f.policy->config().text.hidden;
  ASSERT_EQ(resid.all().difference.at(1).size(), static_cast<size_t>(hidden));
  {
    double sum_words = 0;
    for (int e : {0, 2})
      for (int i = 0; i < 7; i += 3) {
        PolicyInput in = frame_input(dataset.frame(e, i), o.prompt_a);
        double words[2];
        for (int which = 0; which < 2; ++which) {
          in.task = which == 0 ? o.prompt_a : o.prompt_b;
          words[which] = word_rows_mean(*f.policy, in, "vlm.layers.1.resid.post", 17);
        }
        sum_words += words[0] - words[1];
      }
    EXPECT_NEAR(resid.parts.at(TokenRegion::kWords).difference.at(1)[17], sum_words / 6, 1e-4);
  }
  const PromptDirection layer3 = only_layer(resid, 3);
  EXPECT_EQ(layer3.all().difference.size(), 1u);
  EXPECT_EQ(layer3.all().difference.at(3), resid.all().difference.at(3));
  EXPECT_THROW(only_layer(resid, 2), Error);  // not measured
  const NeuronSet resid_set =
      prompt_direction_set(layer3, "prompt_rise_resid3", 0, "test", ro, per_token_kind_last_regions());
  EXPECT_EQ(resid_set.neurons.size(), 3u * static_cast<size_t>(hidden));
  for (const NeuronRef& n : resid_set.neurons) {
    ASSERT_EQ(n.site, ChannelSite::kResidPost);
    ASSERT_EQ(n.layer, 3);
    ASSERT_NE(n.tokens, TokenRegion::kWords);
    ASSERT_DOUBLE_EQ(n.weight, layer3.parts.at(n.tokens).difference.at(3)[static_cast<size_t>(n.index)]);
  }
  // The prompts differ in their last word: there the residual difference is larger than the words' mean.
  EXPECT_GT(resid.parts.at(TokenRegion::kLastWord).difference_norm, resid.parts.at(TokenRegion::kWords).difference_norm);
  validate_neuron_set(resid_set, model_shape(f.policy->config()));
  // Both sites from one pass over the frames give what one pass per site gives.
  const std::map<ChannelSite, PromptDirection> both =
      prompt_differences(*f.policy, dataset, o, {ChannelSite::kMlpPost, ChannelSite::kResidPost});
  for (const auto& [site, alone] : {std::pair{ChannelSite::kMlpPost, &d}, std::pair{ChannelSite::kResidPost, &resid}})
    for (const auto& [region, part] : alone->parts) {
      const PromptDirection::Part& together = both.at(site).parts.at(region);
      EXPECT_EQ(together.difference, part.difference) << token_region_name(region);
      EXPECT_EQ(together.spread, part.spread) << token_region_name(region);
    }
  o.prompt_b = o.prompt_a;
  EXPECT_THROW(prompt_difference(*f.policy, dataset, o), Error);
}

// ---- activation patching ------------------------------------------------------------------------------------

// The value at a point after every earlier hook ran (registered last, so it sees their writes), batch element 0.
struct PointRecording {
  std::map<int, torch::Tensor> by_step;  // denoising step (−1: the prefix pass) → [L, D]
};
PointRecording record_point(Policy& p, const std::string& point, const PolicyInput& in, uint64_t seed = 5) {
  PointRecording r;
  HookHandle h = p.hooks().add(point, [&](const HookContext& ctx, at::Tensor& t) {
    r.by_step[ctx.pass == ForwardPass::kDenoise ? ctx.step : -1] = t.select(0, 0).clone();
  });
  p.predict_chunk(in, seed, 0);
  h.reset();
  return r;
}

double max_chunk_difference(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::abs(double(a[i][j]) - b[i][j]));
  return m;
}

TEST(Patching, EveryExpertLayerAtEveryStepGivesTheSourceChunk) {
  Fixture f;
  Policy& p = *f.policy;
  PolicyInput source = f.input(), target = f.input();
  source.task = "pick up the cube high";
  target.task = "pick up the cube low";
  const auto s = p.predict_chunk(source, 5, 0);
  const auto t = p.predict_chunk(target, 5, 0);
  ASSERT_GT(max_chunk_difference(s, t), 1e-4);  // the prompts change the chunk
  ActivationPatcher patcher(p, layer_patch_specs(p, {"expert"}));
  ASSERT_EQ(patcher.specs().size(), 4u);
  patcher.record();
  EXPECT_EQ(p.predict_chunk(source, 5, 0), s);  // recording changes nothing
  EXPECT_GT(patcher.bytes(), 0u);
  patcher.patch();
  EXPECT_EQ(p.predict_chunk(target, 5, 0), s);  // bit for bit
  EXPECT_EQ(patcher.writes(), (std::vector<int>{10, 10, 10, 10}));  // every layer at every step
  // The last layer alone carries everything the actions read; an early layer alone moves only part of the way.
  patcher.patch({3});
  EXPECT_EQ(p.predict_chunk(target, 5, 0), s);
  patcher.patch({0});
  const auto first_only = p.predict_chunk(target, 5, 0);
  EXPECT_GT(max_chunk_difference(first_only, s), 1e-6);
  EXPECT_GT(max_chunk_difference(first_only, t), 1e-6);
  // Some steps only: the chunk is neither the target's nor the source's.
  patcher.off();
  ActivationPatcher early(p, {parse_patch_spec("expert.layers.3.resid.post@steps:0-4")});
  early.record();
  p.predict_chunk(source, 5, 0);
  early.patch();
  const auto half = p.predict_chunk(target, 5, 0);
  EXPECT_EQ(early.writes(), std::vector<int>{5});
  EXPECT_GT(max_chunk_difference(half, s), 1e-6);
  EXPECT_GT(max_chunk_difference(half, t), 1e-6);
  // Off again: the target's own chunk, with both patchers still hooked.
  early.off();
  patcher.off();
  EXPECT_EQ(p.predict_chunk(target, 5, 0), t);
}

TEST(Patching, APatchedLayerChangesNothingUpstreamAndCarriesTheSourceDownstream) {
  Fixture f;
  Policy& p = *f.policy;
  PolicyInput source = f.input(60), target = f.input(140);  // another frame: the scene camera's shade differs
  const PointRecording src1 = record_point(p, "vlm.layers.1.resid.post", source);
  const PointRecording tgt0 = record_point(p, "vlm.layers.0.resid.post", target);
  const PointRecording tgt2 = record_point(p, "vlm.layers.2.resid.post", target);
  ActivationPatcher patcher(p, {parse_patch_spec("vlm.layers.1.resid.post")});
  patcher.record();
  p.predict_chunk(source, 5, 0);
  patcher.patch();
  const PointRecording up = record_point(p, "vlm.layers.0.resid.post", target);
  const PointRecording at = record_point(p, "vlm.layers.1.resid.post", target);
  const PointRecording down = record_point(p, "vlm.layers.2.resid.post", target);
  EXPECT_TRUE(torch::equal(up.by_step.at(-1), tgt0.by_step.at(-1)));   // upstream: untouched
  EXPECT_TRUE(torch::equal(at.by_step.at(-1), src1.by_step.at(-1)));   // the layer: the source's, every row
  EXPECT_FALSE(torch::equal(down.by_step.at(-1), tgt2.by_step.at(-1)));  // downstream: changed
  // The expert reads the patched prefix too.
  const auto patched = p.predict_chunk(target, 5, 0);
  patcher.off();
  EXPECT_GT(max_chunk_difference(patched, p.predict_chunk(target, 5, 0)), 1e-6);
}

TEST(Patching, RowsAreMatchedByRoleAcrossPromptsOfDifferentLengths) {
  Fixture f;
  Policy& p = *f.policy;
  PolicyInput source = f.input(60), target = f.input(140);
  source.task = "pick up the cube high";  // one word longer than the target's
  const PointRecording src = record_point(p, "vlm.embed", source);
  const PointRecording tgt = record_point(p, "vlm.embed", target);
  const int64_t ls = src.by_step.at(-1).size(0), lt = tgt.by_step.at(-1).size(0);
  ASSERT_EQ(ls, lt + 1);  // the prefixes differ in length: padding to the longest prompt
  const int64_t cam = 4, words = 8, last_s = ls - 2, last_t = lt - 2;  // 2×2 tokens per camera; state last
  ActivationPatcher patcher(p, {parse_patch_spec("vlm.embed@images:wrist+last_word+state"),
                                parse_patch_spec("vlm.embed@words")});
  patcher.record();
  p.predict_chunk(source, 5, 0);
  patcher.patch({0});
  const torch::Tensor got = record_point(p, "vlm.embed", target).by_step.at(-1);
  const torch::Tensor& a = src.by_step.at(-1);
  const torch::Tensor& b = tgt.by_step.at(-1);
  for (int64_t row = 0; row < lt; ++row) {
    torch::Tensor expected = b[row];
    if (row >= cam && row < 2 * cam) expected = a[row];  // the wrist camera's tokens
    if (row == last_t) expected = a[last_s];              // "cube" ← "high"
    if (row == lt - 1) expected = a[ls - 1];              // the state token
    ASSERT_TRUE(torch::equal(got[row], expected)) << "row " << row;
  }
  ASSERT_GE(last_t, words);
  // Words by position need prompts of one length: an Error naming the spec, not a silent misalignment.
  patcher.patch({1});
  try {
    p.predict_chunk(target, 5, 0);
    FAIL() << "words across prompts of different lengths were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vlm.embed@words"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot be matched by position"), std::string::npos) << e.what();
  }
}

TEST(Patching, TheRandomControlPushesEachRowAsFarAsTheSourceInAnotherDirection) {
  Fixture f;
  Policy& p = *f.policy;
  PolicyInput source = f.input(), target = f.input();
  source.task = "pick up the cube high";
  target.task = "pick up the cube low";
  const torch::Tensor s = record_point(p, "vlm.layers.2.mlp.out", source).by_step.at(-1);
  const torch::Tensor t = record_point(p, "vlm.layers.2.mlp.out", target).by_step.at(-1);
  ActivationPatcher patcher(p, {parse_patch_spec("vlm.layers.2.mlp.out")}, 11);
  patcher.record();
  p.predict_chunk(source, 5, 0);
  patcher.random();
  const torch::Tensor r = record_point(p, "vlm.layers.2.mlp.out", target).by_step.at(-1);
  const torch::Tensor want = (s - t).norm(2, -1), got = (r - t).norm(2, -1);
  ASSERT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << got << want;
  EXPECT_GT((want > 1e-3).sum().item<int64_t>(), 0);
  // …in no particular direction: far from the source where the source moved.
  const torch::Tensor cosine = ((r - t) * (s - t)).sum(-1) / (got * want).clamp_min(1e-12);
  EXPECT_LT(cosine.abs().max().item<float>(), 0.9);
  // The same seed draws the same control.
  ActivationPatcher again(p, {parse_patch_spec("vlm.layers.2.mlp.out")}, 11);
  patcher.off();
  again.record();
  p.predict_chunk(source, 5, 0);
  again.random();
  EXPECT_TRUE(torch::equal(record_point(p, "vlm.layers.2.mlp.out", target).by_step.at(-1), r));
  again.off();
  // Per-row seeds: a row gets the same push alone or beside another episode (closed-loop controls stay the same
  // however the episodes are batched, sharded or resumed).
  auto push_of_first_row = [&](std::vector<const PolicyInput*> sources, std::vector<const PolicyInput*> targets,
                               std::vector<uint64_t> seeds) {
    std::vector<Policy::NoiseId> noise(sources.size(), Policy::NoiseId{5, 0});
    torch::Tensor before, after;
    HookHandle h = p.hooks().add("vlm.layers.2.mlp.out", [&](const HookContext&, at::Tensor& t) { after = t[0].clone(); });
    patcher.off();
    p.predict_chunks(targets, noise);
    before = after;
    patcher.record();
    p.predict_chunks(sources, noise);
    patcher.reseed_rows(seeds);
    patcher.random();
    p.predict_chunks(targets, noise);
    h.reset();
    patcher.off();
    return torch::Tensor(after - before);
  };
  PolicyInput other_source = f.input(30), other_target = f.input(220);
  other_source.task = source.task;
  other_target.task = target.task;
  const torch::Tensor alone = push_of_first_row({&source}, {&target}, {77});
  const torch::Tensor beside = push_of_first_row({&source, &other_source}, {&target, &other_target}, {77, 78});
  const torch::Tensor swapped = push_of_first_row({&source, &other_source}, {&target, &other_target}, {78, 77});
  EXPECT_TRUE(torch::allclose(alone, beside, 1e-4, 1e-4));
  EXPECT_FALSE(torch::allclose(alone, swapped, 1e-4, 1e-4));
}

TEST(Patching, BadSpecsAreErrorsNamingTheField) {
  Fixture f;
  Policy& p = *f.policy;
  auto message = [&](const std::function<void()>& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto spec_error = [&](const std::string& text) {
    return message([&] { ActivationPatcher patcher(p, {parse_patch_spec(text)}); });
  };
  EXPECT_NE(spec_error("vlm.layers.1.resid.pots").find("unknown hook point 'vlm.layers.1.resid.pots'"), std::string::npos);
  EXPECT_NE(spec_error("vlm.layers.9.resid.post").find("layer 9 is out of range (the model's vlm has 4 layers)"),
            std::string::npos);
  EXPECT_NE(spec_error("expert.layers.1.resid.post@words").find("the expert's rows are its action tokens"),
            std::string::npos);
  EXPECT_NE(spec_error("expert.layers.1.resid.post@steps:3-12").find("step 12 is out of range"), std::string::npos);
  EXPECT_NE(spec_error("vlm.layers.1.resid.post@steps:1").find("steps are the expert's"), std::string::npos);
  EXPECT_NE(spec_error("vlm.embed@images:nose").find("no camera 'nose' (it has scene, wrist)"), std::string::npos);
  EXPECT_NE(spec_error("vlm.layers.1.attn.pattern").find("attn.pattern is not one row per token"), std::string::npos);
  EXPECT_NE(spec_error("vlm.layers.1.resid.post@elbows").find("unknown rows 'elbows'"), std::string::npos);
  EXPECT_NE(spec_error("vlm.layers.1.resid.post@rows:5-5").find("are empty"), std::string::npos);
  // Outside the prefix: found when the rows meet a pass.
  ActivationPatcher far(p, {parse_patch_spec("vlm.layers.1.resid.post@rows:3-99")});
  far.record();
  p.predict_chunk(f.input(), 5, 0);
  far.patch();
  EXPECT_NE(message([&] { p.predict_chunk(f.input(), 5, 0); }).find("rows 3-99 lie outside the prefix (13 rows)"),
            std::string::npos);
  far.off();
  // Patching before recording, and into another batch size.
  ActivationPatcher fresh(p, {parse_patch_spec("expert.layers.0.mlp.post")});
  fresh.patch();
  EXPECT_NE(message([&] { p.predict_chunk(f.input(), 5, 0); }).find("record the source first"), std::string::npos);
  fresh.record();
  p.predict_chunk(f.input(), 5, 0);
  fresh.patch();
  const PolicyInput one = f.input(), two = f.input(120);
  EXPECT_NE(message([&] { p.predict_chunks({&one, &two}, {{5, 0}, {5, 0}}); }).find("recorded with batch 1"),
            std::string::npos);
}

TEST(Patching, TheStudyScoresEachPatchByTheShareOfTheChunkDifferenceItMoves) {
  Fixture f;
  const fs::path data = f.write_demos(
      2, 4, [](int, EpisodeInfo& info) { info.success = true; }, [](int) { return Phase::kUnknown; });
  const DatasetReader dataset(data.string());
  PatchStudyOptions o;
  o.source_task = "pick up the cube high";
  o.target_task = "pick up the cube low";
  o.frame_stride = 2;  // frames 0 and 2 of both episodes
  o.bootstrap = 200;
  const std::vector<PatchSpec> specs = {parse_patch_spec("expert.layers.3.resid.post"),
                                        parse_patch_spec("vlm.layers.0.resid.post@last_word"),
                                        parse_patch_spec("vlm.layers.3.resid.post")};
  const PatchStudy study = run_patch_study(*f.policy, dataset, specs, o);
  EXPECT_EQ(study.frames, 4);
  EXPECT_GT(study.mean_distance, 0);
  ASSERT_EQ(study.effects.size(), 3u);
  // The last expert layer is all of the difference.
  EXPECT_NEAR(study.effects[0].moved, 1.0, 1e-9);
  EXPECT_EQ(study.effects[0].remaining, 0);
  EXPECT_EQ(study.effects[0].max_abs_to_source, 0);
  EXPECT_LE(study.effects[0].moved_low, 1.0 + 1e-9);
  // The last VLM layer's output is read by nothing (the expert reads each layer's input): it moves nothing.
  EXPECT_EQ(study.effects[2].moved, 0);
  EXPECT_EQ(study.effects[2].remaining, 1);
  // By hand for the middle one: Σ (p − t)·(s − t) / Σ |s − t|² over the same frames and noise.
  double num = 0, den = 0;
  {
    ActivationPatcher patcher(*f.policy, {specs[1]});
    int frame = 0;
    for (int e = 0; e < 2; ++e)
      for (int i = 0; i < 4; i += 2, ++frame) {
        PolicyInput in = frame_input(dataset.frame(e, i), o.source_task);
        patcher.record();
        const auto s = f.policy->predict_chunk(in, o.seed, frame);
        patcher.off();
        in.task = o.target_task;
        const auto t = f.policy->predict_chunk(in, o.seed, frame);
        patcher.patch();
        const auto pc = f.policy->predict_chunk(in, o.seed, frame);
        patcher.off();
        for (size_t a = 0; a < s.size(); ++a)
          for (size_t j = 0; j < s[a].size(); ++j) {
            num += (double(pc[a][j]) - t[a][j]) * (double(s[a][j]) - t[a][j]);
            den += (double(s[a][j]) - t[a][j]) * (double(s[a][j]) - t[a][j]);
          }
      }
  }
  EXPECT_NEAR(study.effects[1].moved, num / den, 1e-9);
  EXPECT_LE(study.effects[1].moved_low, study.effects[1].moved);
  EXPECT_GE(study.effects[1].moved_high, study.effects[1].moved);
  // The control ran: where the patch moves the whole difference, a random push of the same size per row does not.
  EXPECT_LT(std::abs(study.effects[0].random_moved), 0.9);
}

// Between episodes each target frame is paired with the source episode's frame in the same phase at the same
// fraction of it; a phase the source never reached is left out. A dataset of numbers alone (no cameras) says which.
TEST(Patching, EpisodePairsMatchFramesByPhaseAndItsFraction) {
  const fs::path data = fs::temp_directory_path() / ("vlascope_test_pairs_" + std::to_string(::getpid()));
  fs::remove_all(data);
  auto episode = [](const std::string& variant, bool success, const std::vector<std::pair<Phase, int>>& phases) {
    EpisodeInfo info;
    info.instruction = "pick up the cube";
    info.variant = variant;
    info.success = success;
    std::vector<Frame> frames;
    for (const auto& [phase, count] : phases)
      for (int i = 0; i < count; ++i) {
        Frame f;
        f.timestamp = frames.size() / 30.0;
        f.phase = phase;
        frames.push_back(f);
      }
    return std::pair{info, frames};
  };
  {
    DatasetWriter writer(data.string());
    for (const auto& [info, frames] :
         {episode("high", false, {{Phase::kReach, 2}, {Phase::kLift, 2}}),        // 0: failed, never used
          episode("high", true, {{Phase::kReach, 3}, {Phase::kLift, 5}}),         // 1: the source of episode 2
          episode("low", true, {{Phase::kReach, 5}, {Phase::kLift, 3}, {Phase::kHold, 2}}),  // 2
          episode("low", true, {{Phase::kReach, 1}})})                             // 3: no source left for it
      writer.write(info, frames);
  }
  const DatasetReader dataset(data.string());
  PatchStudyOptions o;
  o.source_variant = "high";
  o.target_variant = "low";
  o.frame_stride = 1;
  std::vector<std::pair<int, int>> source, target;
  for (const PatchFramePair& p : patch_frame_pairs(dataset, o)) source.push_back(p.source), target.push_back(p.target);
  // Reach: target frames 0…4 (fractions 0, ¼, ½, ¾, 1) from source frames 0…2; lift: 5…7 from 3…7; hold: none.
  EXPECT_EQ(target, (std::vector<std::pair<int, int>>{{2, 0}, {2, 1}, {2, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}, {2, 7}}));
  EXPECT_EQ(source, (std::vector<std::pair<int, int>>{{1, 0}, {1, 1}, {1, 1}, {1, 2}, {1, 2}, {1, 3}, {1, 5}, {1, 7}}));
  // Between prompts every frame is its own source: successful episodes, every stride-th frame.
  PatchStudyOptions prompts;
  prompts.frame_stride = 4;
  std::vector<std::pair<int, int>> own;
  for (const PatchFramePair& p : patch_frame_pairs(dataset, prompts)) {
    EXPECT_EQ(p.source, p.target);
    own.push_back(p.target);
  }
  EXPECT_EQ(own, (std::vector<std::pair<int, int>>{{1, 0}, {1, 4}, {2, 0}, {2, 4}, {2, 8}, {3, 0}}));
  auto message = [&]() -> std::string {
    try {
      patch_frame_pairs(dataset, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  o.target_variant = "fast";
  EXPECT_NE(message().find("has no successful 'fast' episode"), std::string::npos) << message();
  o.target_variant = "high";
  EXPECT_NE(message().find("needs two different variants (got 'high' and 'high')"), std::string::npos) << message();
  fs::remove_all(data);
}

// The study between episodes: the source is another frame (the chunk distance is not zero under one prompt), and
// the last expert layer still carries all of it.
TEST(Patching, TheStudyBetweenEpisodesMovesTheTargetTowardTheSourceEpisode) {
  Fixture f;
  const fs::path data = f.write_demos(
      2, 4, [](int e, EpisodeInfo& info) { info.success = true, info.variant = e == 0 ? "high" : "low"; },
      [](int i) { return i < 2 ? Phase::kReach : Phase::kLift; });
  const DatasetReader dataset(data.string());
  PatchStudyOptions o;
  o.source_variant = "high";
  o.target_variant = "low";
  o.target_task = "pick up the cube";
  o.frame_stride = 1;
  o.bootstrap = 50;
  const PatchStudy study = run_patch_study(*f.policy, dataset, {parse_patch_spec("expert.layers.3.resid.post")}, o);
  EXPECT_EQ(study.frames, 4);
  EXPECT_GT(study.mean_distance, 0);
  EXPECT_NEAR(study.effects[0].moved, 1.0, 1e-9);
  EXPECT_EQ(study.effects[0].max_abs_to_source, 0);
}

TEST(Patching, AblationsZeroAHeadOrWriteTheMeanOverRecordedFrames) {
  Fixture f;
  Policy& p = *f.policy;
  const int hd = p.config().text.head_dim, heads = p.config().text.heads;
  ASSERT_GE(heads, 2);
  const PolicyInput in = f.input(), other = f.input(150);
  const auto plain = p.predict_chunk(in, 5, 0);
  const torch::Tensor before = record_point(p, "vlm.layers.2.attn.heads", in).by_step.at(-1);  // [L, H·hd]
  ASSERT_EQ(before.size(1), heads * hd);
  {
    ActivationPatcher ablate(p, {parse_patch_spec("vlm.layers.2.attn.heads@head:1")});
    ablate.zero();
    const torch::Tensor after = record_point(p, "vlm.layers.2.attn.heads", in).by_step.at(-1);
    EXPECT_EQ(after.narrow(1, hd, hd).abs().max().item<float>(), 0.f);               // head 1: gone
    EXPECT_TRUE(torch::equal(after.narrow(1, 0, hd), before.narrow(1, 0, hd)));     // head 0: untouched
    EXPECT_GT(max_chunk_difference(p.predict_chunk(in, 5, 0), plain), 1e-6);         // and the actions feel it
    EXPECT_EQ(ablate.writes(), std::vector<int>{2});
  }
  EXPECT_EQ(p.predict_chunk(in, 5, 0), plain);  // the ablation ended with its patcher
  {
    // attn.heads is o_proj's input: with every head zeroed the attention output is zero (o_proj has no bias).
    ActivationPatcher ablate(p, {parse_patch_spec("vlm.layers.2.attn.heads")});
    ablate.zero();
    EXPECT_EQ(record_point(p, "vlm.layers.2.attn.out", in).by_step.at(-1).abs().max().item<float>(), 0.f);
  }
  // Mean ablation: one vector, the mean of the spec's rows over the recorded passes, written into every such row.
  const torch::Tensor a = record_point(p, "vlm.layers.1.mlp.out", in).by_step.at(-1);
  const torch::Tensor b = record_point(p, "vlm.layers.1.mlp.out", other).by_step.at(-1);
  const int64_t state = a.size(0) - 1;
  ActivationPatcher ablate(p, {parse_patch_spec("vlm.layers.1.mlp.out@state")});
  ablate.record_mean();
  EXPECT_EQ(p.predict_chunk(in, 5, 0), plain);  // recording the mean changes nothing
  p.predict_chunk(other, 5, 0);
  ablate.mean();
  const torch::Tensor got = record_point(p, "vlm.layers.1.mlp.out", in).by_step.at(-1);
  EXPECT_TRUE(torch::allclose(got[state], (a[state] + b[state]) / 2, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(got.narrow(0, 0, state), a.narrow(0, 0, state)));  // other rows untouched
  ablate.record_mean();
  ablate.mean();
  EXPECT_NE(std::string([&] {
              try {
                p.predict_chunk(in, 5, 0);
              } catch (const Error& e) {
                return std::string(e.what());
              }
              return std::string();
            }())
                .find("no mean was recorded"),
            std::string::npos);
  ablate.off();
  // A head is chosen where heads are side by side, and exists.
  EXPECT_THROW(ActivationPatcher(p, {parse_patch_spec("vlm.layers.2.resid.post@head:1")}), Error);
  try {
    ActivationPatcher bad(p, {parse_patch_spec("expert.layers.0.attn.heads@head:" + std::to_string(heads))});
    FAIL() << "a head out of range was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is out of range (" + std::to_string(heads) + " heads)"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace vlascope
