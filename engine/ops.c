/* placeholder: being written */
#include "tensor.h"
