"""The Action Chunking Transformer (Zhao et al., 2023) as LeRobot 0.4.4 computes it.

Reading order follows the data: sinusoidal position tables, the transformer layers, then ``ACT`` itself —
VAE encoder (training only) → latent z; ResNet features of each camera → image tokens with 2-D sinusoidal
positions; transformer encoder over [latent, state, (env), image tokens]; DETR-style decoder whose queries are
learned positions; linear action head. Tensors inside the transformer are sequence-first, (L, B, D).

Module names, registration order and random-number draws (construction and dropout) are LeRobot's, so
state dicts, optimizer parameter indices and seeded runs line up with it (spec B.2-B.3).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from positronic.vendors.lerobot.act.backbone import ResNetBackbone, load_pretrained_weights
from positronic.vendors.lerobot.act.config import ACTION_IS_PAD_KEY, ACTION_KEY, STATE_KEY, ACTConfig

SINUSOID_TEMPERATURE = 10000.0
_POS_2D_EPS = 1e-6


def sinusoidal_table_1d(n_positions: int, dim: int) -> Tensor:
    """(n_positions, dim) float32: PE[p, j] = sin(p / 10000^(2*floor(j/2)/dim)) for even j, cos for odd j.

    Computed in float64 and rounded once, as LeRobot builds the VAE encoder's position buffer.
    """
    exponents = 2 * (np.arange(dim) // 2) / dim
    angles = np.arange(n_positions)[:, None] / np.power(SINUSOID_TEMPERATURE, exponents)[None, :]
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.from_numpy(angles).float()


def sinusoidal_table_2d(height: int, width: int, dim: int) -> Tensor:
    """(height * width, dim) float32 positions of a feature map's tokens, row-major (h, w).

    Channels [0, dim/2) encode the row, [dim/2, dim) the column: with t = i / (n + 1e-6) * 2pi for the 1-based
    index i of n, channel c of a half is sin(t / 10000^(2*floor(c/2)/(dim/2))) for even c, cos for odd c.
    """
    half = dim // 2
    inv_freq = SINUSOID_TEMPERATURE ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)
    rows = torch.arange(1, height + 1, dtype=torch.float32)
    cols = torch.arange(1, width + 1, dtype=torch.float32)
    rows = (rows / (rows[-1] + _POS_2D_EPS) * (2 * math.pi))[:, None] / inv_freq  # (H, half)
    cols = (cols / (cols[-1] + _POS_2D_EPS) * (2 * math.pi))[:, None] / inv_freq  # (W, half)
    rows = torch.stack((rows[:, 0::2].sin(), rows[:, 1::2].cos()), dim=-1).flatten(1)
    cols = torch.stack((cols[:, 0::2].sin(), cols[:, 1::2].cos()), dim=-1).flatten(1)
    grid = torch.cat((rows[:, None, :].expand(height, width, half), cols[None, :, :].expand(height, width, half)), -1)
    return grid.reshape(height * width, dim)


def _activation(name: str):
    return {'relu': F.relu, 'gelu': F.gelu}[name]


class ACTEncoderLayer(nn.Module):
    """Self-attention + feed-forward; positions are added to queries and keys only, at every layer."""

    def __init__(self, config: ACTConfig):
        super().__init__()
        d = config.dim_model
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        """x: (L, B, D); pos: (L, 1 or B, D); key_padding_mask: (B, L), True = ignore."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x if pos is None else x + pos
        x = skip + self.dropout1(self.self_attn(qk, qk, x, key_padding_mask=key_padding_mask)[0])
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm2(x)

    def forward_first_token(self, x: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None):
        """``forward(x, pos, key_padding_mask)[:1]``, (1, B, D), without computing the other L - 1 outputs.

        Token 0 attends to every token, so keys and values are projected in full; queries, the output
        projection and the feed-forward run for token 0 only. Dropout masks are drawn at the full shapes, in
        the same order as ``forward``, and sliced, so a seeded run draws and applies the very same masks.
        """
        attn = self.self_attn
        n, b, d = x.shape
        heads = attn.num_heads
        p_attn, p = (attn.dropout, self.dropout.p) if self.training else (0.0, 0.0)
        skip = x[:1]
        if self.pre_norm:
            x = self.norm1(x)
        qk = x if pos is None else x + pos
        w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attn.in_proj_bias.chunk(3)
        q = F.linear(qk[:1], w_q, b_q).view(1, b * heads, d // heads).transpose(0, 1)  # (B*h, 1, d/h)
        k = F.linear(qk, w_k, b_k).view(n, b * heads, d // heads).transpose(0, 1)  # (B*h, L, d/h)
        v = F.linear(x, w_v, b_v).view(n, b * heads, d // heads).transpose(0, 1)
        scores = (q * math.sqrt(1.0 / (d // heads))) @ k.transpose(1, 2)
        if key_padding_mask is not None:
            mask = torch.zeros(key_padding_mask.shape, dtype=x.dtype, device=x.device)
            mask.masked_fill_(key_padding_mask, float('-inf'))
            scores = scores + mask.view(b, 1, 1, n).expand(-1, heads, -1, -1).reshape(b * heads, 1, n)
        weights = _first_row_dropout(scores.softmax(dim=-1), (b * heads, n, n), p_attn, dim=1)
        out = F.linear((weights @ v).transpose(0, 1).reshape(b, d), attn.out_proj.weight, attn.out_proj.bias)
        x = skip + _first_row_dropout(out.view(1, b, d), (n, b, d), p)
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        hidden = _first_row_dropout(self.activation(self.linear1(x)), (n, b, self.linear1.out_features), p)
        x = skip + _first_row_dropout(self.linear2(hidden), (n, b, d), p)
        return x if self.pre_norm else self.norm2(x)


def _first_row_dropout(x: Tensor, full_shape: tuple[int, ...], p: float, dim: int = 0) -> Tensor:
    """``F.dropout`` of a ``full_shape`` tensor, restricted to index 0 along ``dim`` (``x`` is that slice).

    The mask is drawn at the full shape exactly as ``F.dropout`` draws it on CPU (bernoulli(1 - p) / (1 - p)),
    so the random stream advances as in the full computation.
    """
    if p == 0.0:
        return x
    mask = torch.empty(full_shape, dtype=x.dtype, device=x.device).bernoulli_(1 - p).div_(1 - p)
    return x * mask.narrow(dim, 0, 1)


class ACTEncoder(nn.Module):
    def __init__(self, config: ACTConfig, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList([ACTEncoderLayer(config) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(config.dim_model) if config.pre_norm else nn.Identity()

    def forward(self, x: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos, key_padding_mask)
        return self.norm(x)

    def forward_first_token(
        self, x: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None
    ) -> Tensor:
        """``forward(...)[0]``, (B, D): the last layer computes token 0 only (the VAE encoder's cls output)."""
        for layer in self.layers[:-1]:
            x = layer(x, pos, key_padding_mask)
        x = self.layers[-1].forward_first_token(x, pos, key_padding_mask) if self.layers else x[:1]
        return self.norm(x)[0]


class ACTDecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the encoder output, feed-forward."""

    def __init__(self, config: ACTConfig):
        super().__init__()
        d = config.dim_model
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, memory: Tensor, query_pos: Tensor, memory_pos: Tensor) -> Tensor:
        """x: (S, B, D) queries; memory: (L, B, D) encoder output; query_pos: (S, 1, D); memory_pos: (L, 1, D)."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x + query_pos
        x = skip + self.dropout1(self.self_attn(qk, qk, x)[0])
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.dropout2(self.multihead_attn(x + query_pos, memory + memory_pos, memory)[0])
        if self.pre_norm:
            skip, x = x, self.norm3(x)
        else:
            x = skip = self.norm2(x)
        x = skip + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm3(x)


class ACTDecoder(nn.Module):
    def __init__(self, config: ACTConfig):
        super().__init__()
        self.layers = nn.ModuleList([ACTDecoderLayer(config) for _ in range(config.n_decoder_layers)])
        self.norm = nn.LayerNorm(config.dim_model)

    def forward(self, x: Tensor, memory: Tensor, query_pos: Tensor, memory_pos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, query_pos, memory_pos)
        return self.norm(x)


class ACT(nn.Module):
    """ACT: (normalized observations[, action chunk]) -> (action chunk (B, S, A), (mu, log_sigma_x2) or None)."""

    def __init__(self, config: ACTConfig, load_backbone_weights: bool = True):
        super().__init__()
        config.validate_features()
        self.config = config
        d = config.dim_model
        state = config.robot_state_feature
        env = config.env_state_feature
        action_dim = config.action_feature.shape[0]

        if config.use_vae:
            self.vae_encoder = ACTEncoder(config, config.n_vae_encoder_layers)
            self.vae_encoder_cls_embed = nn.Embedding(1, d)
            if state is not None:
                self.vae_encoder_robot_state_input_proj = nn.Linear(state.shape[0], d)
            self.vae_encoder_action_input_proj = nn.Linear(action_dim, d)
            self.vae_encoder_latent_output_proj = nn.Linear(d, 2 * config.latent_dim)
            n_vae_tokens = 1 + (state is not None) + config.chunk_size
            self.register_buffer('vae_encoder_pos_enc', sinusoidal_table_1d(n_vae_tokens, d).unsqueeze(0))

        if config.image_features:
            self.backbone = ResNetBackbone(config.vision_backbone, config.replace_final_stride_with_dilation)
            if config.pretrained_backbone_weights is not None and load_backbone_weights:
                load_pretrained_weights(self.backbone, config.pretrained_backbone_weights, config.vision_backbone)

        self.encoder = ACTEncoder(config, config.n_encoder_layers)
        self.decoder = ACTDecoder(config)

        if state is not None:
            self.encoder_robot_state_input_proj = nn.Linear(state.shape[0], d)
        if env is not None:
            self.encoder_env_state_input_proj = nn.Linear(env.shape[0], d)
        self.encoder_latent_input_proj = nn.Linear(config.latent_dim, d)
        if config.image_features:
            self.encoder_img_feat_input_proj = nn.Conv2d(self.backbone.out_channels, d, kernel_size=1)
        self.encoder_1d_feature_pos_embed = nn.Embedding(1 + (state is not None) + (env is not None), d)
        self.decoder_pos_embed = nn.Embedding(config.chunk_size, d)
        self.action_head = nn.Linear(d, action_dim)

        for p in (*self.encoder.parameters(), *self.decoder.parameters()):
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self._camera_pos_cache: dict[tuple, Tensor] = {}

    def camera_positions(self, height: int, width: int, like: Tensor) -> Tensor:
        """(height * width, 1, D) 2-D sinusoidal positions of one camera's tokens (computed once per size)."""
        key = (height, width, like.device, like.dtype)
        if key not in self._camera_pos_cache:
            table = sinusoidal_table_2d(height, width, self.config.dim_model)
            self._camera_pos_cache[key] = table.unsqueeze(1).to(like.device, like.dtype)
        return self._camera_pos_cache[key]

    def camera_features(self, images: list[Tensor]) -> list[Tensor]:
        """Projected feature maps (B, D, H', W') per camera. Cameras of one size go through the backbone as one
        batch: the same per-image results as one call per camera, faster on CPU."""
        if not images:
            return []
        if len({image.shape for image in images}) > 1:
            return [self.encoder_img_feat_input_proj(self.backbone(image)) for image in images]
        joint = images[0] if len(images) == 1 else torch.cat(images)
        return list(self.encoder_img_feat_input_proj(self.backbone(joint)).chunk(len(images)))

    def encode_latent(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """VAE encoder: [cls, state, actions] -> cls output -> (z, mu, log_sigma_x2), each (B, latent_dim)."""
        actions = batch[ACTION_KEY]
        b = actions.shape[0]
        tokens = [self.vae_encoder_cls_embed.weight.expand(b, 1, -1)]
        if self.config.robot_state_feature is not None:
            tokens.append(self.vae_encoder_robot_state_input_proj(batch[STATE_KEY]).unsqueeze(1))
        tokens.append(self.vae_encoder_action_input_proj(actions))
        tokens = torch.cat(tokens, dim=1).transpose(0, 1)  # (1 + [1] + S, B, D)
        n_unpadded = tokens.shape[0] - actions.shape[1]
        pad = torch.cat([batch[ACTION_IS_PAD_KEY].new_zeros(b, n_unpadded), batch[ACTION_IS_PAD_KEY]], dim=1)
        cls_out = self.vae_encoder.forward_first_token(tokens, self.vae_encoder_pos_enc.transpose(0, 1), pad)
        params = self.vae_encoder_latent_output_proj(cls_out)
        mu, log_sigma_x2 = params[:, : self.config.latent_dim], params[:, self.config.latent_dim :]
        z = mu + log_sigma_x2.div(2).exp() * torch.randn_like(mu)
        return z, mu, log_sigma_x2

    def forward(
        self, batch: dict[str, Tensor], images: list[Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor] | tuple[None, None]]:
        """batch: normalized ``observation.state`` (B, N), env state, and in training ``action`` (B, S, A) and
        ``action_is_pad`` (B, S); images: normalized (B, 3, H, W) per camera in config order.

        Returns actions (B, S, A) in normalized space and (mu, log_sigma_x2), each (B, latent_dim), when the VAE
        encoder ran (training with actions), else (None, None).
        """
        cfg = self.config
        b = images[0].shape[0] if images else batch[cfg.env_state_key].shape[0]
        if cfg.use_vae and self.training and ACTION_KEY in batch:
            z, mu, log_sigma_x2 = self.encode_latent(batch)
        else:
            mu = log_sigma_x2 = None
            z = torch.zeros(b, cfg.latent_dim, dtype=torch.float32, device=self.encoder_latent_input_proj.weight.device)

        tokens = [self.encoder_latent_input_proj(z)[None]]
        if cfg.robot_state_feature is not None:
            tokens.append(self.encoder_robot_state_input_proj(batch[STATE_KEY])[None])
        if cfg.env_state_feature is not None:
            tokens.append(self.encoder_env_state_input_proj(batch[cfg.env_state_key])[None])
        positions = [self.encoder_1d_feature_pos_embed.weight.unsqueeze(1)]
        for features in self.camera_features(images):
            h, w = features.shape[-2:]
            positions.append(self.camera_positions(h, w, features))
            tokens.append(features.flatten(2).permute(2, 0, 1))  # (H'W', B, D)
        tokens = torch.cat(tokens)
        positions = torch.cat(positions)

        memory = self.encoder(tokens, positions)
        queries = torch.zeros(cfg.chunk_size, b, cfg.dim_model, dtype=positions.dtype, device=positions.device)
        decoded = self.decoder(queries, memory, self.decoder_pos_embed.weight.unsqueeze(1), positions)
        return self.action_head(decoded.transpose(0, 1)), (mu, log_sigma_x2)
