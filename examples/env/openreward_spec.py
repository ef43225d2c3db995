"""Train on `ehrgym env serve` with TRL's OpenRewardSpec (trl.experimental.openreward, `pip install trl[openreward]`).

    ehrgym env serve --port 8091 --train-size 1000      # in another terminal

The server is an Open Reward Standard server on one host, so both SDK URLs point at it; its one environment is
`medagentbench` and its splits are `train` (generated tasks, the default TRL reads) and `test` (MedAgentBench v2).
The reward of a rollout is the last non-null reward: 1.0 when the `finish` call is graded correct, else 0.0; the
grader's named checks arrive in each finishing call's `metadata["reward_components"]` (see docs/env.md).
"""

import os

URL = "http://127.0.0.1:8091"
os.environ["OPENREWARD_API_URL"] = URL
os.environ["OPENREWARD_SESSION_URL"] = URL

from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.experimental.openreward import OpenRewardSpec  # noqa: E402

spec = OpenRewardSpec(URL, env_name="medagentbench", num_tasks=256)

trainer = GRPOTrainer(
    model="Qwen/Qwen3-4B",
    args=GRPOConfig(num_generations=8, max_tool_calling_iterations=8, log_completions=True),
    train_dataset=spec.train_dataset,
    environment_factory=spec.environment_factory,
    reward_funcs=spec.reward_funcs,
)
trainer.train()
