/* cpu.h — the CPU tier (vlm_cpu_tier in vlm.h) as the kernels ask for it. */
#ifndef VLM_CPU_H
#define VLM_CPU_H

#include "vlm/vlm.h"

/* Whether the tier runs bf16 multiplies natively (vdpbf16ps, AMX): then
 * bf16 weights are multiplied in bf16; below it they are stored in bf16 and
 * multiplied in f32. */
gboolean vlm_cpu_native_bf16 (void);

/* Whether the tier is `amx` and the OS lets this process use AMX tile
 * data (Linux asks for it per process: arch_prctl ARCH_REQ_XCOMP_PERM,
 * requested here once): where the engine's own kernels may use tiles. */
gboolean vlm_cpu_amx_tiles (void);

/* Whether the CPU is Intel's (cpuid vendor): where streaming kernels
 * prefetch differently (ops_gemv.c). */
gboolean vlm_cpu_intel (void);

/* The largest |q| of an s8 weight. 127 with VNNI (vpdpbusd sums u8·s8
 * products in s32); 63 below it, where u8·s8 goes through vpmaddubsw,
 * which adds pairs of products in s16 and saturates (2 · 255 · 127 >
 * 32767): 7-bit weights keep every pair in range (2 · 255 · 63 < 32767). */
int vlm_cpu_int8_weight_max (void);

/* How many of n_threads the engine's own decode kernels should run now:
 * n_threads less the cores other processes took over the last ~100 ms of
 * the cores this process may use (/proc/stat, less this process's own CPU
 * time), at least 1. n_threads where /proc/stat cannot be read. */
int vlm_cpu_threads_now (int n_threads);

/* Whether vlm_cpu_threads_now follows the load (the default) or always
 * answers n_threads: VLM_FOLLOW_LOAD=0 in the environment, or this call,
 * which also forgets the samples taken. oneDNN's f32 sums can depend on
 * the thread count, so results are bit-reproducible from run to run only
 * on a fixed count. */
void vlm_cpu_follow_load (gboolean follow);


#endif
