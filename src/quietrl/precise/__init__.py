"""quietrl.precise: SDE-consistent stochastic sampling for GRPO on flow-matching models.

Implements "Precise: SDE-Consistent Stochastic Sampling for RL Post-Training of Flow-Matching Models"
(arXiv 2605.23522): every sampler (ODE, Flow-GRPO, DanceGRPO, CPS, MixGRPO, Precise, dance_precise) as one
Gaussian transition, the S1/S2/S3 consistency statistics, conditional flow-matching models of a
prompt-conditioned 2-D mixture and of class-conditioned 8x8 digits, and GRPO fine-tuning (rank-r LoRA or
the full model) where the sampler is the policy.
"""
from quietrl.precise.analysis import (
    bootstrap_time_to_target, paired_reach_difference, smooth, time_to_target)
from quietrl.precise.consistency import (
    Mixture, excess_variance, noise_ratios, posterior_mean, retention, s3_row, simulate_mixture)
from quietrl.precise.digits import DigitsTask, class_accuracy
from quietrl.precise.env import MixtureTask
from quietrl.precise.flow import pretrain, sample_model
from quietrl.precise.grpo import (
    Arm, finetune, group_advantages, init_trainable, make_arm, make_trainer, model_params)
from quietrl.precise.networks import VelocityMLP
from quietrl.precise.samplers import (
    DEFAULT_ETA, SAMPLERS, STD_FLOOR, Schedule, gauss_logprob, make_schedule, pair_coefficients,
    step_coefficients, transition)
from quietrl.precise.schedules import flux_grid, make_grid, shifted_grid, uniform_grid
from quietrl.precise.types import FlowConfig, GRPOConfig, digits_flow_config

__all__ = [
    "Arm", "DEFAULT_ETA", "DigitsTask", "FlowConfig", "GRPOConfig", "Mixture", "MixtureTask", "SAMPLERS",
    "STD_FLOOR", "Schedule", "VelocityMLP", "bootstrap_time_to_target", "class_accuracy",
    "digits_flow_config", "excess_variance", "finetune", "flux_grid", "gauss_logprob", "group_advantages",
    "init_trainable", "make_arm", "make_grid", "make_schedule", "make_trainer", "model_params",
    "noise_ratios", "pair_coefficients", "paired_reach_difference", "posterior_mean", "pretrain", "retention",
    "s3_row", "sample_model", "shifted_grid", "simulate_mixture", "smooth", "step_coefficients",
    "time_to_target", "transition", "uniform_grid",
]
