/* ops_tier.c — which table of the engine's own kernels (ops_kernels.h)
 * runs: the one compiled for the tier vlm_cpu_tier() reports. Apart from
 * ops_kernels.c, which is compiled once per tier. */
#include "cpu.h"
#include "ops_kernels.h"

const VlmKernels *
vlm_kernels (void)
{
  VlmCpuTier t = vlm_cpu_tier ();
  return t >= VLM_CPU_AVX512_BF16 ? &vlm_kernels_avx512vnni
         : t == VLM_CPU_AVX512    ? &vlm_kernels_avx512
         : t == VLM_CPU_AVX2      ? &vlm_kernels_avx2
                                  : &vlm_kernels_generic;
}
