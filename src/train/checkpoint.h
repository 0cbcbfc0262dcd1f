/* Internal: trainer checkpoints inside a run directory.
 *
 * RUN/checkpoint-<step>/ holds model.safetensors, optimizer.safetensors and
 * trainer_state.json. It is written under a temporary name and renamed
 * whole; RUN/latest_checkpoint (replaced atomically) names the newest one
 * and is the commit point. RUN/model.safetensors is a hard link to the
 * newest checkpoint's weights, so RUN itself loads as a Hugging Face model
 * directory without a second copy of the weights. A kill at any moment
 * leaves the previous checkpoint intact and loadable. */
#ifndef LMKIT_CHECKPOINT_H
#define LMKIT_CHECKPOINT_H

#include "lmkit/train.h"

lm_status lm_checkpoint_save(const char *run_dir, const lm_gpt2 *m, const lm_adamw *opt, long step,
                             const lm_train_options *o);
/* Reads RUN/latest_checkpoint's trainer state: options and step. o->data_dir
 * and *ckpt_dir are malloc'd; the caller frees them. */
lm_status lm_checkpoint_read_state(const char *run_dir, lm_train_options *o, long *step, char **ckpt_dir);
/* Loads weights and optimizer moments from a checkpoint directory. */
lm_status lm_checkpoint_load(const char *ckpt_dir, lm_gpt2 *m, lm_adamw *opt);

#endif
