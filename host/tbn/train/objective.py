"""What a run optimises and reports, by its dataset's task: classification (cross-entropy,
top-1 accuracy), a forecast (mean squared error, RMSE on the standardised targets) or anomaly
detection (an autoencoder: mean squared reconstruction error, scored by ROC AUC). One small
object each, so the loop has one path for all."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from tbn.data.datasets import as_float
from tbn.errors import UsageError


class Objective:
    """The loss, the teacher's part of it and the score a run reports."""

    metric = ""  # the score's name: test_<metric> in metrics.json
    train_metric = ""  # what batch_sum adds up: train_<train_metric> in metrics.json

    def loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of outputs ``out`` of inputs ``x`` against labels or targets ``y``."""
        raise NotImplementedError

    def distill(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """How far ``out`` is from the teacher's outputs."""
        raise NotImplementedError

    def batch_sum(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        """The batch's part of the training score, summed over its items (see :meth:`finish`)."""
        raise NotImplementedError

    def finish(self, total: float, n: int) -> float:
        """The score from the sum of ``n`` items' parts."""
        raise NotImplementedError

    @staticmethod
    def outputs(model: nn.Module, x: torch.Tensor,
                batch: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, outputs, float inputs)`` of ``model`` on ``x`` a batch at a time, in eval
        mode (the model's mode is restored after); call it under ``torch.no_grad()``."""
        if len(x) == 0:  # a score of nothing would divide by zero
            raise UsageError("there are no inputs to score: the test split is empty")
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        try:
            for i in range(0, len(x), batch):
                xb = as_float(x[i:i + batch])
                yield i, model(xb.to(device)).cpu(), xb
        finally:
            model.train(was_training)

    @torch.no_grad()
    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
        """The score of ``model`` on ``(x, y)``, in eval mode."""
        total = sum(self.batch_sum(out, xb, y[i:i + batch]) for i, out, xb in self.outputs(model, x, batch))
        return self.finish(total, len(x))


class Classify(Objective):
    metric = train_metric = "accuracy"

    def loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y)

    def distill(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        t = temperature  # Hinton's soft targets; t^2 keeps the gradient's size across t
        soft = F.softmax(teacher / t, dim=1)
        return F.kl_div(F.log_softmax(out / t, dim=1), soft, reduction="batchmean") * t ** 2

    def batch_sum(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((out.argmax(1) == y).sum().item())

    def finish(self, total: float, n: int) -> float:
        return total / n


class Forecast(Objective):
    metric = train_metric = "rmse"

    def loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, y)

    def distill(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        return F.mse_loss(out, teacher)  # a regression's soft target is the teacher's value

    def batch_sum(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        return float(((out - y) ** 2).mean(dim=1).sum().item())

    def finish(self, total: float, n: int) -> float:
        return (total / n) ** 0.5


class Reconstruct(Objective):
    """An autoencoder of normal inputs: trained on the mean squared error between output and
    input; scored as MLPerf Tiny's ad01 is, each test clip by its vectors' mean error, then the
    ROC AUC of each machine's clips, averaged (:func:`tbn.data.toycar.auc`). ``y`` holds the
    rows :func:`tbn.data.toycar.load_toycar` gives."""

    metric, train_metric = "auc", "mse"

    def loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, x.flatten(1))

    def distill(self, out: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        return F.mse_loss(out, teacher)

    def batch_sum(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        return float(self.errors(out, x).sum().item())

    def finish(self, total: float, n: int) -> float:
        return total / n

    @staticmethod
    def errors(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each input's mean squared reconstruction error."""
        return ((out - x.flatten(1)) ** 2).mean(dim=1)

    @torch.no_grad()
    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
        from tbn.data.toycar import auc

        errors = torch.cat([self.errors(out, xb) for _, out, xb in self.outputs(model, x, batch)])
        return auc(errors.double().numpy(), y.numpy())


def objective(task: str) -> Objective:
    """The objective of a dataset's task (:attr:`tbn.data.datasets.Dataset.task`)."""
    return {"classify": Classify, "forecast": Forecast, "anomaly": Reconstruct}[task]()
