#include "policy/captions.h"

#include <algorithm>
#include <cmath>

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
                          const CaptionThresholds& t) {
  require(index >= 0 && index < static_cast<int>(trajectory.size()),
          "caption_frame: frame " + std::to_string(index) + " is outside the episode (" +
              std::to_string(trajectory.size()) + " frames)");
  const Frame& f = trajectory[index];
  const Frame& first = trajectory.front();
  std::vector<std::string> sentences;

  // Where the cube is, seen from the robot: it faces −Y, so its left is +X (so100.md §1.3). Side by azimuth
  // around the pan axis, distance from the axis, in the steps of CaptionThresholds.
  bool cube_known = std::isfinite(f.object_position[0]);
  double cube_half = 0.0125;
  double table_z = cube_known ? first.object_position[2] - cube_half : 0.0;
  bool cube_on_table = false;
  if (cube_known) {
    std::string colour;
    auto r = info.scalars.find("cube_r"), g = info.scalars.find("cube_g"), b = info.scalars.find("cube_b");
    if (r != info.scalars.end() && g != info.scalars.end() && b != info.scalars.end())
      colour = colour_name(r->second, g->second, b->second) + " ";
    double x = f.object_position[0], y = f.object_position[1] - t.pan_axis_y;
    double azimuth = std::atan2(x, -y), distance = norm2(x, y);
    static const char* sides[] = {"on the far right", "on the right", "slightly right", "in the centre",
                                  "slightly left", "on the left", "on the far left"};
    int side = static_cast<int>(std::floor(azimuth / t.side_step + 0.5)) + 3;
    static const char* ranges[] = {"very close", "close", "distant", "very distant"};
    int range = static_cast<int>(std::floor((distance - t.middle_distance) / t.distance_step)) + 2;
    sentences.push_back("the " + colour + "cube is " + sides[std::clamp(side, 0, 6)] + " and " +
                        ranges[std::clamp(range, 0, 3)]);
    cube_on_table = f.object_position[2] - first.object_position[2] <= t.lifted;
    if (cube_on_table) {  // where the gripper still has to go, in the robot's left/right and ahead/behind
      double dx = x - f.ee_position[0], dy = f.object_position[1] - f.ee_position[1];
      double along = dx * std::sin(azimuth) - dy * std::cos(azimuth);   // + = farther from the base
      double across = dx * std::cos(azimuth) + dy * std::sin(azimuth);  // + = to the robot's left
      if (norm2(dx, dy) < t.over_cube)
        sentences.push_back("the gripper is over the cube");
      else if (std::abs(along) >= std::abs(across))
        sentences.push_back(along > 0 ? "the cube is ahead of the gripper" : "the cube is behind the gripper");
      else
        sentences.push_back(across > 0 ? "the cube is left of the gripper" : "the cube is right of the gripper");
    }
  }

  // The gripper: height above the table, open or closed.
  double height = f.ee_position[2] - table_z;
  std::string level = height < t.low_height ? "low" : height > t.high_height ? "high" : "in the middle";
  std::string jaws = f.state[5] > t.open_gripper ? "open" : "closed";
  sentences.push_back("the gripper is " + level + " and " + jaws);

  if (cube_known) {
    sentences.push_back(cube_on_table ? "the cube is on the table" : "the gripper holds the cube up");
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
      sentences.push_back("the arm is still");
    } else {
      std::string direction;
      if (std::abs(vz) >= norm2(vx, vy))
        direction = vz > 0 ? "up" : "down";
      else  // horizontal: toward or away from the robot's base
        direction = (vx * f.ee_position[0] + vy * f.ee_position[1]) > 0 ? "forward" : "back";
      sentences.push_back("the arm moves " + direction + (speed > t.fast_speed ? " fast" : " slowly"));
    }
  }

  switch (f.phase) {
    case Phase::kReach: sentences.push_back("the robot reaches for the cube"); break;
    case Phase::kGrasp: sentences.push_back("the robot grasps the cube"); break;
    case Phase::kLift: sentences.push_back("the robot lifts the cube"); break;
    case Phase::kHold: sentences.push_back("the robot holds the cube"); break;
    case Phase::kUnknown: break;
  }
  return join(sentences);
}

const std::vector<std::string>& caption_vocabulary() {
  static const std::vector<std::string> words = {
      // captions
      "the", "cube", "is", "on", "left", "right", "in", "front", "of", "robot", "near", "far", "from",
      "gripper", "low", "high", "middle", "and", "open", "closed", "holds", "up", "table", "arm", "still",
      "moves", "down", "forward", "back", "fast", "slowly", "reaches", "for", "grasps", "lifts",
      "slightly", "centre", "very", "close", "distant", "over", "ahead", "behind",
      "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "gray", "black", ".",
      // the task instruction and the prompt-only steering baselines ("… lift it high", "… slowly")
      "pick", "lift", "it", "higher", "lower", "slow", "quickly", "gently", "carefully", "a", "to"};
  return words;
}

}  // namespace vlascope
