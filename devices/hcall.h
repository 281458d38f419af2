/* devices/hcall.h - what an application fault event carries (the payload
 * of TVM_EV_APP_FAULT): the guest's fault record and its mappings, copied
 * out of guest memory and validated. */
#ifndef TVM_HCALL_H
#define TVM_HCALL_H

#include "../guests/include/trialvm_abi.h"

struct app_fault {
	struct tvm_fault f;
	unsigned nmaps;
	struct tvm_mapping maps[TVM_FAULT_MAX_MAPS];
};

#endif
