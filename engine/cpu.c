/* cpu.c — the CPU tier, decided once: the CPU's features, oneDNN's
 * effective ISA (DNNL_MAX_CPU_ISA) and VLM_MAX_CPU_ISA, whichever is
 * lowest. Kernels never ask the CPU directly (target_clones would pick
 * AVX-512 under an AVX2 cap), they ask this. */
#include "cpu.h"

#include <cpuid.h>
#include <dnnl.h>
#include <dnnl_debug.h>

static VlmCpuTier tier;
static char description[160];

static const struct {
  const char *name;       /* vlm_cpu_tier_name */
  const char *isa;        /* the VLM_MAX_CPU_ISA / DNNL_MAX_CPU_ISA value */
  dnnl_cpu_isa_t dnnl;    /* the oneDNN ISA the tier needs */
} tiers[] = {
  [VLM_CPU_GENERIC] = { "generic", "SSE41", dnnl_cpu_isa_sse41 },
  [VLM_CPU_AVX2] = { "avx2", "AVX2", dnnl_cpu_isa_avx2 },
  [VLM_CPU_AVX512] = { "avx512", "AVX512_CORE", dnnl_cpu_isa_avx512_core },
  [VLM_CPU_AVX512_BF16] = { "avx512-bf16", "AVX512_CORE_BF16", dnnl_cpu_isa_avx512_core_bf16 },
  [VLM_CPU_AMX] = { "amx", "AVX512_CORE_AMX", dnnl_cpu_isa_avx512_core_amx },
};

const char *
vlm_cpu_tier_name (VlmCpuTier t)
{
  return t <= VLM_CPU_AMX ? tiers[t].name : "unknown";
}

/* What the CPU itself has. AMX is read from CPUID (leaf 7, EDX bits 22 and
 * 24: AMX-BF16, AMX-TILE), which GCC's cpu model does not know; whether
 * the OS grants tile state is oneDNN's to ask. */
static VlmCpuTier
cpu_features (void)
{
  if (!__builtin_cpu_supports ("avx2") || !__builtin_cpu_supports ("fma"))
    return VLM_CPU_GENERIC;
  if (!__builtin_cpu_supports ("avx512f") || !__builtin_cpu_supports ("avx512bw") ||
      !__builtin_cpu_supports ("avx512vl") || !__builtin_cpu_supports ("avx512dq"))
    return VLM_CPU_AVX2;
  if (!__builtin_cpu_supports ("avx512bf16") || !__builtin_cpu_supports ("avx512vnni"))
    return VLM_CPU_AVX512;
  unsigned a, b, c, d;
  if (__get_cpuid_count (7, 0, &a, &b, &c, &d) && (d & (1u << 22)) && (d & (1u << 24)))
    return VLM_CPU_AMX;
  return VLM_CPU_AVX512_BF16;
}

/* The highest tier whose oneDNN ISA is within `isa` (ISA values are bit
 * sets that contain the ones below them). */
static VlmCpuTier
from_dnnl (dnnl_cpu_isa_t isa)
{
  VlmCpuTier t = VLM_CPU_GENERIC;
  for (int i = VLM_CPU_AVX2; i <= VLM_CPU_AMX; i++)
    if ((isa & tiers[i].dnnl) == tiers[i].dnnl)
      t = i;
  return t;
}

static void
detect (void)
{
  VlmCpuTier hw = cpu_features (), cap = VLM_CPU_AMX;
  const char *env = g_getenv ("VLM_MAX_CPU_ISA");
  if (env) {
    gboolean known = FALSE;
    for (int i = VLM_CPU_GENERIC; i <= VLM_CPU_AMX; i++)
      if (g_ascii_strcasecmp (env, tiers[i].isa) == 0 || g_ascii_strcasecmp (env, tiers[i].name) == 0) {
        cap = i;
        known = TRUE;
      }
    if (!known)
      g_warning ("VLM_MAX_CPU_ISA=%s is not one of SSE41, AVX2, AVX512_CORE, AVX512_CORE_BF16, "
                 "AVX512_CORE_AMX: ignored", env);
    else   /* before oneDNN JITs anything; fails harmlessly if DNNL_MAX_CPU_ISA set it lower */
      dnnl_set_max_cpu_isa (tiers[cap].dnnl);
  }
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  VlmCpuTier onednn = from_dnnl (isa);
  tier = MIN (MIN (hw, cap), onednn);
  const char *dnnl_env = g_getenv ("DNNL_MAX_CPU_ISA");
  g_snprintf (description, sizeof description, "%s (CPU %s, oneDNN %s%s%s%s%s)", tiers[tier].name,
              tiers[hw].name,
              dnnl_cpu_isa2str (isa), dnnl_env ? ", DNNL_MAX_CPU_ISA=" : "", dnnl_env ? dnnl_env : "",
              env ? ", VLM_MAX_CPU_ISA=" : "", env ? env : "");
}

VlmCpuTier
vlm_cpu_tier (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    detect ();
    g_once_init_leave (&once, 1);
  }
  return tier;
}

gboolean
vlm_cpu_native_bf16 (void)
{
  return vlm_cpu_tier () >= VLM_CPU_AVX512_BF16;
}

int
vlm_cpu_int8_weight_max (void)
{
  return vlm_cpu_tier () >= VLM_CPU_AVX512_BF16 ? 127 : 63;
}

const char *
vlm_cpu_describe (void)
{
  vlm_cpu_tier ();
  return description;
}
