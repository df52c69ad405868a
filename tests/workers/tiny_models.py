"""Tiny randomly initialised models of every family, saved the way real weights are shipped.

Each builder writes a folder that the production loaders read (open_clip's local-dir layout,
transformers' `save_pretrained` with safetensors), so tests exercise the real loading code with
no download. Tokenizers are built from a word list written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

WORDS = [
    "what",
    "is",
    "the",
    "color",
    "of",
    "shirt",
    "person",
    "wearing",
    "a",
    "an",
    "are",
    "does",
    "have",
    "red",
    "blue",
    "green",
    "yellow",
    "black",
    "white",
    "yes",
    "no",
    "short",
    "long",
    "sleeve",
    "sleeveless",
    "hair",
    "photo",
    "picture",
    "coat",
    "dress",
    "pants",
    "background",
    "wall",
    "street",
    "describe",
    "plain",
    "striped",
    "floral",
    "?",
    ",",
    ".",
    ":",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_tokenizer() -> Any:
    from transformers import BertTokenizer

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    tokenizer = BertTokenizer(vocab=vocab)
    # BLIP's decoder starts from [DEC], its bos token.
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def open_clip_folder(folder: Path, seed: int = 0) -> Path:
    """open_clip local-dir layout: open_clip_config.json + open_clip_model.safetensors.

    The text tower keeps the real BPE vocabulary size, so open_clip's shipped tokenizer works.
    """
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": {
            "embed_dim": 32,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
        },
        "preprocess_cfg": {"mean": [0.481, 0.458, 0.408], "std": [0.269, 0.261, 0.276]},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}")
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "open_clip_model.safetensors"),
    )
    return folder


def _blip_config(vocab_size: int, bos_id: int) -> Any:
    from transformers import BlipConfig

    return BlipConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
            "bos_token_id": bos_id,
            "pad_token_id": 0,
            "sep_token_id": 3,
            "eos_token_id": 3,
        },
        projection_dim=32,
    )


def _blip_processor() -> Any:
    from transformers import BlipImageProcessor, BlipProcessor

    return BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=bert_tokenizer()
    )


def blip_vqa_folder(folder: Path, seed: int = 0) -> Path:
    from transformers import BlipForQuestionAnswering

    processor = _blip_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    BlipForQuestionAnswering(_blip_config(len(tokenizer), tokenizer.bos_token_id)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def blip_caption_folder(folder: Path, seed: int = 0) -> Path:
    from transformers import BlipForConditionalGeneration

    processor = _blip_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    BlipForConditionalGeneration(_blip_config(len(tokenizer), tokenizer.bos_token_id)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def instructblip_t5_folder(folder: Path, seed: int = 0) -> Path:
    """InstructBLIP with a Flan-T5-shaped language model: the paper's labeler, in miniature."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        BlipImageProcessor,
        InstructBlipConfig,
        InstructBlipForConditionalGeneration,
        InstructBlipProcessor,
        PreTrainedTokenizerFast,
        T5Config,
    )

    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    qformer_tokenizer = bert_tokenizer()
    processor = InstructBlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        qformer_tokenizer=qformer_tokenizer,
        num_query_tokens=4,
    )
    text_config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    config = InstructBlipConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        qformer_config={
            "vocab_size": len(qformer_tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
        },
        text_config=text_config.to_dict(),
        num_query_tokens=4,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    InstructBlipForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def detr_folder(folder: Path, seed: int = 0) -> Path:
    """DETR with a tiny ResNet built from config: no timm, no pretrained backbone."""
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", out_features=["stage2"]
    )
    config = DetrConfig(
        use_timm_backbone=False,
        backbone_config=backbone,
        use_pretrained_backbone=False,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=5,
        id2label={0: "person", 1: "chair"},
        label2id={"person": 0, "chair": 1},
    )
    torch.manual_seed(seed)
    DetrForObjectDetection(config).save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder


def segformer_folder(folder: Path, seed: int = 0, num_labels: int = 18) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        num_attention_heads=[1, 2],
        patch_sizes=[7, 3],
        strides=[4, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder
