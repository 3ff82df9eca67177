/* fuzz.h — what the libFuzzer harnesses of tests/fuzz share (tools/fuzz.sh
 * builds and runs them). Each harness writes its input where the engine
 * reads model files from, so the real file paths are exercised: open,
 * fstat, map, parse. A Json-CRITICAL or any GLib critical aborts, as it
 * does in the tests (G_DEBUG=fatal-criticals). */
#ifndef VLM_FUZZ_H
#define VLM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "vlm/vlm.h"

/* Once per process: criticals fatal, engine logging silenced. */
void fuzz_init (void);
/* A folder of this process's own, made on first use. */
const char *fuzz_dir (void);
/* Writes data to fuzz_dir()/name; returns the path (owned, valid until the
 * next call with the same name). */
const char *fuzz_write (const char *name, const uint8_t *data, size_t size);
/* Writes data to fuzz_dir()/name, opens it as weights (safetensors or
 * pytorch_model.bin, by the name) and reads every tensor it hands out as
 * its type: UBSan sees a misaligned or out-of-bounds view. */
void fuzz_weights (const char *name, const uint8_t *data, size_t size);
/* ../shared/rel from the project root ($VLM_PROJECT_ROOT or the working
 * directory), as the tests find it. g_free. */
char *fuzz_shared_path (const char *rel);
/* Project-root-relative path. g_free. */
char *fuzz_project_path (const char *rel);

#endif
