// The main() of every test program: GoogleTest, after the process-wide settings of common/runtime.h.
#include <gtest/gtest.h>

#include "common/runtime.h"

int main(int argc, char** argv) {
  vlascope::prepare_runtime(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
