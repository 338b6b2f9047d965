#!/usr/bin/env bash
# Fine-tune BAAI/bge-large-zh-v1.5 with FlagEmbedding under torchrun (the command `kit train` builds for
# configs/bge-large-zh-v1.5.yaml). Multi-node: run on every node with the same MASTER_ADDR and its NODE_RANK.
#   DATA=work/data/train_hn.jsonl OUTPUT=work/bge-large-zh-ft NPROC_PER_NODE=8 bash scripts/train_bge_large_zh.sh
# Resume a killed run: add  --resume_from_checkpoint "$OUTPUT/checkpoint-N"  (or use `kit train`, which does it).
set -euo pipefail
cd "$(dirname "$0")/.."

NPROC_PER_NODE=${NPROC_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l | awk '{print ($1 > 0 ? $1 : 1)}')}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
MODEL=${MODEL:-BAAI/bge-large-zh-v1.5}
DATA=${DATA:-work/data/train_hn.jsonl}
OUTPUT=${OUTPUT:-work/bge-large-zh-ft}

torchrun --nproc_per_node "$NPROC_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
  -m FlagEmbedding.finetune.embedder.encoder_only.base \
  --model_name_or_path "$MODEL" \
  --train_data "$DATA" \
  --output_dir "$OUTPUT" \
  --query_instruction_for_retrieval "为这个句子生成表示以用于检索相关文章：" \
  --query_instruction_format "{}{}" \
  --sentence_pooling_method cls \
  --normalize_embeddings True \
  --learning_rate 1e-5 \
  --num_train_epochs 2 \
  --per_device_train_batch_size 32 \
  --train_group_size 8 \
  --query_max_len 64 \
  --passage_max_len 512 \
  --temperature 0.02 \
  --negatives_cross_device True \
  --gradient_checkpointing True \
  --fp16 True \
  --deepspeed configs/ds_stage1.json \
  --warmup_steps 100 \
  --weight_decay 0.01 \
  --logging_steps 10 \
  --save_steps 1000 \
  --save_total_limit 3 \
  --dataloader_num_workers 4 \
  --dataloader_drop_last True \
  --report_to none \
  "$@"
