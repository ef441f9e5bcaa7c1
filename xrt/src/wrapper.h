/* What bindgen reads: the shim's C interface, plus XRT's own definitions of the xclbin (axlf)
 * container, so the xclbin writer can be checked against XRT's structure layouts, and the
 * run states (ert_cmd_state). */
#include "shim.h"
#include <xclbin.h>
#include <ert.h>
