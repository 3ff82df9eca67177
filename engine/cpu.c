/* cpu.c — the CPU tier, decided once: the CPU's features, oneDNN's
 * effective ISA (DNNL_MAX_CPU_ISA) and VLM_MAX_CPU_ISA, whichever is
 * lowest. Kernels never ask the CPU directly (target_clones would pick
 * AVX-512 under an AVX2 cap), they ask this. */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_ISSET */
#include "cpu.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

gboolean
vlm_cpu_amx_tiles (void)
{
  static gsize once;
  static gboolean granted;
  if (g_once_init_enter (&once)) {
    /* ARCH_REQ_XCOMP_PERM / ARCH_GET_XCOMP_PERM for XFEATURE_XTILEDATA (18)
     * (asm/prctl.h, Linux ≥ 5.16; an older kernel refuses both) */
    unsigned long features = 0;
    granted = vlm_cpu_tier () >= VLM_CPU_AMX && syscall (SYS_arch_prctl, 0x1023, 18) == 0 &&
              syscall (SYS_arch_prctl, 0x1022, &features) == 0 && (features & (1ul << 18));
    g_once_init_leave (&once, 1);
  }
  return granted;
}

gboolean
vlm_cpu_intel (void)
{
  static gsize once;
  static gboolean intel;
  if (g_once_init_enter (&once)) {
    unsigned a, vendor[3];
    intel = __get_cpuid (0, &a, &vendor[0], &vendor[2], &vendor[1]) && memcmp (vendor, "GenuineIntel", 12) == 0;
    g_once_init_leave (&once, 1);
  }
  return intel;
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

/* ------------------------------------------------------------ cores taken by others
 *
 * A pipeline shares its cores with decoders, converters and other
 * processes. A memory-bound decode step is a chain of short parallel
 * regions; when another process holds one of two cores, every region waits
 * at its barrier for the thread the OS descheduled (measured: GIT decode
 * under the AVX2 cap, 15.5 ms a token quiet, 60 with two threads and one
 * core taken, 31.6 with one thread either way). So the engine's own
 * decode kernels run on the cores others leave: the CPU time of this
 * machine's (affine) cores that is not this process's, sampled from
 * /proc/stat at most every SAMPLE_US. */

#define SAMPLE_US 100000

static GMutex load_lock;
static gint64 load_wall;        /* µs of the last sample; 0: none yet */
static double load_busy, load_self;   /* s of busy CPU time (affine cores) and of ours then */
static double load_others;      /* cores others used over the last interval */
static int load_disabled;       /* /proc/stat unreadable */
static int load_taken;          /* cores given up to others */
static int load_follow = -1;    /* VLM_FOLLOW_LOAD (default 1); -1: not read yet */

/* Busy seconds of the cores this process may run on, or < 0. */
static double
affine_busy_seconds (void)
{
  cpu_set_t set;
  gboolean have_set = sched_getaffinity (0, sizeof set, &set) == 0;
  FILE *f = fopen ("/proc/stat", "re");
  if (!f)
    return -1;
  char line[512];
  double ticks = 0;
  gboolean any = FALSE;
  while (fgets (line, sizeof line, f)) {
    int cpu;
    unsigned long long v[8] = { 0 };   /* user nice system idle iowait irq softirq steal */
    if (strncmp (line, "cpu", 3) != 0)
      break;
    if (sscanf (line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3], &v[4],
                &v[5], &v[6], &v[7]) < 8)
      continue;   /* the "cpu " total line */
    if (have_set && (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET (cpu, &set)))
      continue;
    ticks += (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    any = TRUE;
  }
  fclose (f);
  long hz = sysconf (_SC_CLK_TCK);
  return any && hz > 0 ? ticks / hz : -1;
}

void
vlm_cpu_follow_load (gboolean follow)
{
  g_mutex_lock (&load_lock);
  load_follow = follow ? 1 : 0;
  load_wall = 0;
  load_taken = 0;
  g_mutex_unlock (&load_lock);
}

int
vlm_cpu_threads_now (int n_threads)
{
  if (n_threads <= 1)
    return MAX (n_threads, 1);
  gint64 now = g_get_monotonic_time ();
  g_mutex_lock (&load_lock);
  if (load_follow < 0) {
    const char *env = g_getenv ("VLM_FOLLOW_LOAD");
    load_follow = !(env && strcmp (env, "0") == 0);
  }
  if (!load_follow) {
    g_mutex_unlock (&load_lock);
    return n_threads;
  }
  if (!load_disabled && now - load_wall >= SAMPLE_US) {
    struct timespec ts;
    double busy = affine_busy_seconds ();
    double self = clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts) == 0 ? ts.tv_sec + ts.tv_nsec * 1e-9 : -1;
    if (busy < 0 || self < 0)
      load_disabled = 1;
    else {
      if (load_wall > 0) {
        double wall = (now - load_wall) / 1e6;
        /* jiffies are coarse: never below zero, never above the cores */
        load_others = CLAMP (((busy - load_busy) - (self - load_self)) / wall, 0.0, (double) n_threads);
        /* With hysteresis: while our threads contend with another process
         * for a core, the OS shares it out, so the other appears to use
         * only half of it (measured 0.5–0.7 beside a spinning process);
         * once we leave it the core, it uses all of it. A core is given up
         * above 0.45 of one and taken back below 0.3. */
        if (load_others > load_taken + 0.45 && load_taken < n_threads - 1)
          load_taken++;
        else if (load_taken > 0 && load_others < load_taken - 0.7)
          load_taken--;
      }
      load_wall = now;
      load_busy = busy;
      load_self = self;
    }
  }
  int taken = load_taken;
  g_mutex_unlock (&load_lock);
  return CLAMP (n_threads - taken, 1, n_threads);
}
