#include "policy/captions.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"

namespace vlascope {

namespace {

double norm2(double x, double y) { return std::sqrt(x * x + y * y); }

std::string join(const std::vector<std::string>& sentences) {
  std::string out;
  for (const std::string& s : sentences) {
    if (!out.empty()) out += ' ';
    out += s + " .";
  }
  return out;
}

// A choice among wordings that mean the same; the first is the canonical one.
using Wordings = std::vector<std::string>;

// ---- the phrase tables (every word of the vocabulary comes from here) ------------------------------------------

const Wordings kCubeNoun = {"cube", "block", "box", "brick", "object", "toy", "item"};
const Wordings kGripperNoun = {"gripper", "claw", "hand", "jaws", "fingers", "pincer", "end effector"};
const Wordings kArmNoun = {"arm", "robot arm", "manipulator", "machine", "limb"};
const Wordings kTableNoun = {"table", "surface", "tabletop", "desk", "bench", "workbench"};
const std::vector<Wordings> kSides = {
    {"on the far right", "at the far right", "far to the right", "at the extreme right", "rightmost"},
    {"on the right", "to the right", "at the right side"},
    {"slightly right", "a bit to the right", "just right of centre"},
    {"in the centre", "in the center", "straight ahead", "in the middle of the workspace"},
    {"slightly left", "a bit to the left", "just left of centre"},
    {"on the left", "to the left", "at the left side"},
    {"on the far left", "at the far left", "far to the left", "at the extreme left", "leftmost"}};
const std::vector<Wordings> kRanges = {{"very close", "right next to the base", "very near", "beside the base"},
                                       {"close", "near", "nearby", "within reach", "close by"},
                                       {"distant", "far", "away", "farther out", "further out"},
                                       {"very distant", "very far", "far away", "remote"}};
const Wordings kAhead = {"the cube is ahead of the gripper", "the {cube} is in front of the {gripper}",
                         "the {gripper} must go forward to reach the {cube}", "the {cube} lies beyond the {gripper}"};
const Wordings kBehind = {"the cube is behind the gripper", "the {cube} is behind the {gripper}",
                          "the {gripper} must come back toward the base", "the {gripper} has gone past the {cube}"};
const Wordings kLeftOf = {"the cube is left of the gripper", "the {cube} is to the left of the {gripper}",
                          "the {gripper} must move left"};
const Wordings kRightOf = {"the cube is right of the gripper", "the {cube} is to the right of the {gripper}",
                           "the {gripper} must move right"};
const Wordings kOver = {"the gripper is over the cube", "the {gripper} is above the {cube}",
                        "the {gripper} is right over the {cube}", "the {gripper} hovers over the {cube}"};

// Concept words: a concept is a cluster of tokens, as in a real VLM's vocabulary. A low wording never borrows one
// of high's words ("just above", "barely raised"), nor a fast one slow's: the sets stay apart.
const Wordings kHighPlace = {"high", "up high", "raised", "elevated", "high above the {table}", "at the top", "up",
                             "lifted", "aloft"};
const Wordings kLowPlace = {"low", "down low", "near the {table}", "close to the {table}", "at the bottom", "down",
                            "below",
                            "lowered", "near the bottom", "near the floor"};
const Wordings kMiddlePlace = {"in the middle", "halfway up", "at middle height", "midway"};
const Wordings kOpen = {"open", "wide open", "opened", "apart", "spread", "unclenched"};
const Wordings kClosed = {"closed", "shut", "clamped", "together", "tight", "clenched"};
const Wordings kOnTable = {"the cube is on the table", "the {cube} rests on the {table}", "the {cube} lies on the {table}",
                           "the {cube} sits on the {table}", "the {cube} has not been lifted yet"};
const Wordings kHeldUp = {"the gripper holds the cube up", "the {gripper} holds the {cube} up",
                          "the {cube} is held in the {gripper}", "the {gripper} carries the {cube}",
                          "the {cube} is off the {table}"};
// How far the held cube is up.
const Wordings kCubeHigh = {"the cube is high", "the {cube} is up high", "the {cube} is raised high",
                            "the {cube} is far above the {table}", "the {cube} is near the top",
                            "the {cube} is elevated"};
const Wordings kCubeLow = {"the cube is low", "the {cube} is only a little off the {table}",
                           "the {cube} is just off the {table}", "the {cube} is barely lifted",
                           "the {cube} is held low", "the {cube} is down near the {table}"};
const Wordings kCubeMiddle = {"the cube is at middle height", "the {cube} is halfway up",
                              "the {cube} is midway up"};
const Wordings kStill = {"the arm is still", "the {arm} is not moving", "the {arm} rests", "the {arm} waits",
                         "the {arm} pauses", "the {arm} is motionless", "the {arm} is idle",
                         "the {arm} stays put", "the {arm} is stationary"};
const Wordings kUpward = {"up", "upward", "upwards", "higher", "skyward", "aloft", "toward the ceiling"};
const Wordings kDownward = {"down", "downward", "downwards", "lower", "toward the {table}", "toward the floor"};
const Wordings kForward = {"forward", "outward", "ahead", "away from the base"};
const Wordings kBackward = {"back", "backward", "inward", "toward the base"};
const Wordings kFast = {"fast", "quickly", "rapidly", "swiftly", "briskly", "at speed", "in a hurry", "speedily",
                        "hastily", "nimbly"};
const Wordings kSlow = {"slowly", "gently", "gradually", "carefully", "steadily", "calmly", "softly", "cautiously",
                        "delicately", "unhurriedly", "patiently"};
const Wordings kMoves = {"the arm moves", "the {arm} moves", "the {arm} travels", "the {arm} goes", "the {arm} heads"};
const Wordings kReach = {"the robot reaches for the cube", "the robot approaches the {cube}",
                         "the {arm} goes to the {cube}", "the robot moves toward the {cube}", "the robot stretches toward the {cube}",
                         "the {arm} extends to the {cube}"};
const Wordings kGrasp = {"the robot grasps the cube", "the robot grips the {cube}", "the robot grabs the {cube}",
                         "the {gripper} closes on the {cube}", "the robot seizes the {cube}",
                         "the {gripper} clamps the {cube}", "the {gripper} pinches the {cube}", "the robot catches the {cube}"};
const Wordings kLift = {"the robot lifts the cube", "the robot picks up the {cube}", "the robot raises the {cube}",
                        "the robot hoists the {cube}", "the {arm} brings the {cube} up",
                        "the robot elevates the {cube}", "the {arm} pulls the {cube} off the {table}"};
const Wordings kHold = {"the robot holds the cube", "the robot keeps the {cube} up", "the robot keeps holding the {cube}",
                        "the {cube} stays in the {gripper}", "the robot maintains its grip on the {cube}",
                        "the {cube} remains aloft"};

// ---- instructions -----------------------------------------------------------------------------------------------

const Wordings kNeutral = {"pick up the cube and lift it", "pick up the {cube} and lift it",
                           "grab the {cube} and lift it", "take the {cube} and lift it", "pick the {cube} up",
                           "lift the {cube}", "grasp the {cube} and pick it up", "get the {cube} and lift it",
                           "fetch the {cube} and lift it", "please pick up the {cube}", "could you lift the {cube}",
                           "now pick up the {cube}", "collect the {cube} and lift it"};
// The heads the variant's adverb follows: no height or speed word of their own ("raise" is one of high's).
const Wordings kNeutralHead = {"pick up the cube and lift it", "pick up the {cube} and lift it",
                               "grab the {cube} and lift it", "take the {cube} and lift it",
                               "grasp the {cube} and lift it", "fetch the {cube} and lift it",
                               "seize the {cube} and lift it"};
const Wordings kHighAdverb = {"high", "higher", "up high", "very high", "high up", "to the top", "way up", "tall",
                              "high above the {table}", "upward", "as high as you can", "above your head",
                              "to the sky", "as far up as possible", "loftily"};
const Wordings kHighWhole = {"raise the {cube} up high", "lift the {cube} up to the top", "hoist the {cube} high",
                             "pick up the {cube} and hold it up high", "lift the {cube} high into the air",
                             "elevate the {cube} high",
                             "lift the {cube} to a great height", "raise the {cube} toward the ceiling"};
const Wordings kLowAdverb = {"low", "lower", "down low", "only a little", "just a bit", "near the {table}",
                             "close to the {table}", "barely", "slightly", "below your shoulder", "just off the {table}",
                             "a tiny bit", "minimally", "modestly", "to a small height", "barely off the {table}"};
const Wordings kLowWhole = {"pick up the {cube} and keep it low", "lift the {cube} just a little",
                            "lift the {cube} only slightly", "pick up the {cube} and hold it near the {table}",
                            "lift the {cube} a bit and keep it down low", "pick up the {cube} but stay low",
                            "keep the {cube} close to the {table}", "lift the {cube} to a low height"};
const Wordings kFastAdverb = {"fast", "quickly", "rapidly", "swiftly", "briskly", "in a hurry", "at full speed",
                              "without delay", "fast please", "as fast as you can",
                              "speedily", "hastily", "promptly", "in no time", "right away", "at once"};
const Wordings kFastWhole = {"hurry and pick up the {cube}", "quickly pick up the {cube} and lift it",
                             "rapidly grab the {cube} and lift it", "be quick and lift the {cube}",
                             "swiftly lift the {cube}", "hurry up and lift the {cube}",
                             "make it fast and lift the {cube}", "rush to lift the {cube}"};
const Wordings kSlowAdverb = {"slowly", "slow", "gently", "carefully", "gradually", "steadily", "calmly", "softly",
                              "with care", "at a slow pace", "without rushing", "leisurely",
                              "cautiously", "delicately", "patiently", "unhurriedly", "at a gentle pace", "in slow motion"};
const Wordings kSlowWhole = {"slowly pick up the {cube} and lift it", "gently grab the {cube} and lift it",
                             "carefully lift the {cube}", "take your time and lift the {cube}",
                             "gradually raise the {cube}", "lift the {cube} slowly and smoothly",
                             "ease the {cube} up slowly", "lift the {cube} with great care"};

// Chooses wordings: seed 0 always the first (canonical) one, any other seed a random one.
class Wording {
 public:
  explicit Wording(uint64_t seed) : seed_(seed), state_(seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL) {}
  // One of `options`, its "{cube}", "{gripper}", "{arm}", "{table}" slots filled by further choices.
  std::string pick(const Wordings& options) {
    const std::string& chosen = seed_ == 0 ? options.front() : options[next() % options.size()];
    return fill(chosen);
  }

 private:
  uint64_t next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::string fill(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      if (text[i] != '{') {
        out += text[i++];
        continue;
      }
      const size_t close = text.find('}', i);
      const std::string slot = text.substr(i + 1, close - i - 1);
      out += pick(slot == "cube" ? kCubeNoun : slot == "gripper" ? kGripperNoun : slot == "arm" ? kArmNoun : kTableNoun);
      i = close + 1;
    }
    return out;
  }
  uint64_t seed_;
  uint64_t state_;
};

const Wordings& adverbs_of(const std::string& variant) {
  if (variant == "high") return kHighAdverb;
  if (variant == "low") return kLowAdverb;
  if (variant == "fast") return kFastAdverb;
  if (variant == "slow") return kSlowAdverb;
  throw Error("variant_instruction: unknown variant '" + variant + "' (high, low, fast or slow)");
}
const Wordings& wholes_of(const std::string& variant) {
  if (variant == "high") return kHighWhole;
  if (variant == "low") return kLowWhole;
  if (variant == "fast") return kFastWhole;
  return kSlowWhole;
}

}  // namespace

std::string colour_name(double r, double g, double b) {
  double mx = std::max({r, g, b}), mn = std::min({r, g, b});
  double chroma = mx - mn;
  if (mx < 0.15) return "black";
  if (chroma < 0.12) return mx > 0.8 ? "white" : "gray";
  double hue;  // degrees
  if (mx == r)
    hue = 60 * std::fmod((g - b) / chroma + 6, 6.0);
  else if (mx == g)
    hue = 60 * ((b - r) / chroma + 2);
  else
    hue = 60 * ((r - g) / chroma + 4);
  if (hue < 15 || hue >= 335) return "red";
  if (hue < 45) return "orange";
  if (hue < 70) return "yellow";
  if (hue < 165) return "green";
  if (hue < 200) return "cyan";
  if (hue < 255) return "blue";
  if (hue < 295) return "purple";
  return "pink";
}

std::string caption_frame(const EpisodeInfo& info, const std::vector<Frame>& trajectory, int index,
                          const CaptionThresholds& t, uint64_t paraphrase) {
  require(index >= 0 && index < static_cast<int>(trajectory.size()),
          "caption_frame: frame " + std::to_string(index) + " is outside the episode (" +
              std::to_string(trajectory.size()) + " frames)");
  Wording w(paraphrase);
  const Frame& f = trajectory[index];
  const Frame& first = trajectory.front();
  std::vector<std::string> sentences;

  // Where the cube is, seen from the robot: it faces −Y, so its left is +X (so100.md §1.3). Side by azimuth
  // around the pan axis, distance from the axis, in the steps of CaptionThresholds.
  bool cube_known = std::isfinite(f.object_position[0]);
  double cube_half = 0.0125;
  double table_z = cube_known ? first.object_position[2] - cube_half : 0.0;
  bool cube_on_table = false;
  double cube_rise = 0;
  if (cube_known) {
    std::string colour;
    auto r = info.scalars.find("cube_r"), g = info.scalars.find("cube_g"), b = info.scalars.find("cube_b");
    if (r != info.scalars.end() && g != info.scalars.end() && b != info.scalars.end())
      colour = colour_name(r->second, g->second, b->second) + " ";
    double x = f.object_position[0], y = f.object_position[1] - t.pan_axis_y;
    double azimuth = std::atan2(x, -y), distance = norm2(x, y);
    int side = static_cast<int>(std::floor(azimuth / t.side_step + 0.5)) + 3;
    int range = static_cast<int>(std::floor((distance - t.middle_distance) / t.distance_step)) + 2;
    sentences.push_back("the " + colour + w.pick(kCubeNoun) + " is " + w.pick(kSides[std::clamp(side, 0, 6)]) +
                        " and " + w.pick(kRanges[std::clamp(range, 0, 3)]));
    cube_rise = f.object_position[2] - first.object_position[2];
    cube_on_table = cube_rise <= t.lifted;
    if (cube_on_table) {  // where the gripper still has to go, in the robot's left/right and ahead/behind
      double dx = x - f.ee_position[0], dy = f.object_position[1] - f.ee_position[1];
      double along = dx * std::sin(azimuth) - dy * std::cos(azimuth);   // + = farther from the base
      double across = dx * std::cos(azimuth) + dy * std::sin(azimuth);  // + = to the robot's left
      if (norm2(dx, dy) < t.over_cube)
        sentences.push_back(w.pick(kOver));
      else if (std::abs(along) >= std::abs(across))
        sentences.push_back(w.pick(along > 0 ? kAhead : kBehind));
      else
        sentences.push_back(w.pick(across > 0 ? kLeftOf : kRightOf));
    }
  }

  // The gripper: height above the table, open or closed.
  double height = f.ee_position[2] - table_z;
  const Wordings& level = height < t.low_height ? kLowPlace : height > t.high_height ? kHighPlace : kMiddlePlace;
  sentences.push_back("the " + w.pick(kGripperNoun) + " is " + w.pick(level) + " and " +
                      w.pick(f.state[5] > t.open_gripper ? kOpen : kClosed));

  if (cube_known) {
    sentences.push_back(w.pick(cube_on_table ? kOnTable : kHeldUp));
    // How high the held cube is: the words a lift's goal is later asked in.
    if (!cube_on_table)
      sentences.push_back(w.pick(cube_rise > t.cube_high ? kCubeHigh : cube_rise < t.cube_low ? kCubeLow : kCubeMiddle));
  }

  // Motion of the end effector over a few frames around this one.
  int a = std::max(0, index - t.motion_window), b = std::min<int>(trajectory.size() - 1, index + t.motion_window);
  double dt = trajectory[b].timestamp - trajectory[a].timestamp;
  if (dt > 0) {
    double vx = (trajectory[b].ee_position[0] - trajectory[a].ee_position[0]) / dt;
    double vy = (trajectory[b].ee_position[1] - trajectory[a].ee_position[1]) / dt;
    double vz = (trajectory[b].ee_position[2] - trajectory[a].ee_position[2]) / dt;
    double speed = std::sqrt(vx * vx + vy * vy + vz * vz);
    if (speed < t.still_speed) {
      sentences.push_back(w.pick(kStill));
    } else {
      const Wordings* direction;
      if (std::abs(vz) >= norm2(vx, vy))
        direction = vz > 0 ? &kUpward : &kDownward;
      else  // horizontal: toward or away from the robot's base
        direction = (vx * f.ee_position[0] + vy * f.ee_position[1]) > 0 ? &kForward : &kBackward;
      sentences.push_back(w.pick(kMoves) + " " + w.pick(*direction) + " " +
                          w.pick(speed > t.fast_speed ? kFast : kSlow));
    }
  }

  switch (f.phase) {
    case Phase::kReach: sentences.push_back(w.pick(kReach)); break;
    case Phase::kGrasp: sentences.push_back(w.pick(kGrasp)); break;
    case Phase::kLift: sentences.push_back(w.pick(kLift)); break;
    case Phase::kHold: sentences.push_back(w.pick(kHold)); break;
    case Phase::kUnknown: break;
  }
  return join(sentences);
}

std::string neutral_instruction(uint64_t paraphrase) { return Wording(paraphrase).pick(kNeutral); }

std::string variant_instruction(const std::string& variant, uint64_t paraphrase) {
  const Wordings& adverbs = adverbs_of(variant);
  Wording w(paraphrase);
  // Two of three name the variant after the neutral task ("… lift it high"); the rest say it in their own words.
  if (paraphrase == 0) return kNeutral.front() + " " + w.pick(adverbs);
  const uint64_t form = (paraphrase * 0xD6E8FEB86659FD93ULL) >> 61;  // 0 … 7
  if (form < 5) return w.pick(kNeutralHead) + " " + w.pick(adverbs);
  return w.pick(wholes_of(variant));
}

std::string training_instruction(const EpisodeInfo& info, const InstructionMix& mix, uint64_t draw) {
  // draw → a uniform number in [0, 1) for the choice, and the rest for the paraphrase.
  uint64_t z = draw * 0x9E3779B97F4A7C15ULL + 0x7F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) / 9007199254740992.0;  // 2^53
  const uint64_t paraphrase = (z & 0x7FFULL) * 0x100000001B3ULL + draw + 1;  // never 0: a random wording
  const bool named = !info.variant.empty() && u < mix.named_fraction;
  if (named) return variant_instruction(info.variant, paraphrase);
  return mix.paraphrase_neutral ? neutral_instruction(paraphrase) : info.instruction;
}

const std::vector<std::string>& concept_words(const std::string& concept) {
  static const std::map<std::string, std::vector<std::string>> words = {
      {"high", {"high", "higher", "upward", "upwards", "above", "top", "raise", "raised", "tall", "elevated",
                "hoist", "skyward", "elevate"}},
      {"low", {"low", "lower", "down", "downward", "downwards", "below", "bottom", "barely", "slightly", "lowered"}},
      {"fast", {"fast", "quickly", "rapidly", "swiftly", "hurry", "briskly", "quick", "speed"}},
      {"slow", {"slow", "slowly", "gently", "carefully", "gradually", "steadily", "calmly", "softly", "leisurely",
                "care"}}};
  const auto it = words.find(concept);
  require(it != words.end(), "concept_words: unknown concept '" + concept + "' (high, low, fast or slow)");
  return it->second;
}

const std::vector<std::string>& caption_vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<const Wordings*> tables = {
        &kCubeNoun, &kGripperNoun, &kArmNoun, &kTableNoun, &kAhead, &kBehind, &kLeftOf, &kRightOf, &kOver,
        &kHighPlace, &kLowPlace, &kMiddlePlace, &kOpen, &kClosed, &kOnTable, &kHeldUp, &kCubeHigh, &kCubeLow,
        &kCubeMiddle, &kStill, &kUpward, &kDownward, &kForward, &kBackward, &kFast, &kSlow, &kMoves, &kReach,
        &kGrasp, &kLift, &kHold, &kNeutral, &kNeutralHead, &kHighAdverb, &kHighWhole, &kLowAdverb, &kLowWhole,
        &kFastAdverb, &kFastWhole, &kSlowAdverb, &kSlowWhole};
    for (const Wordings& w : kSides) tables.push_back(&w);
    for (const Wordings& w : kRanges) tables.push_back(&w);
    // Words outside the tables: the sentence frames, colours, the old prompt baselines' words.
    std::vector<std::string> out = {"the", "is", "and", ".", "red", "orange", "yellow", "green", "cyan", "blue",
                                    "purple", "pink", "white", "gray", "black", "a", "to"};
    std::set<std::string> seen(out.begin(), out.end());
    for (const Wordings* table : tables)
      for (const std::string& text : *table) {
        std::istringstream in(text);
        for (std::string word; in >> word;) {
          if (word.front() == '{') continue;  // a slot; its words come from their own table
          if (seen.insert(word).second) out.push_back(word);
        }
      }
    return out;
  }();
  return words;
}

}  // namespace vlascope
