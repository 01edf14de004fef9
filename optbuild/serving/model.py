"""A runtime behind an artifact's input contract: what `optbuild.load` returns, whatever runs it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError
from optbuild.serving.contract import Feeds, check_feeds, describe
from optbuild.serving.images import image_pixels


class ServedModel(ABC):
    """A runtime behind the input contract: `model(x)` takes a dict of arrays, one array (a
    one-input model), or a decoded image (PIL or 8-bit H×W×C; resized/cropped as the recipe says)
    and returns {output name: array}. Subclasses run checked feeds (`_run`)."""

    contract: list[dict[str, Any]]

    def __repr__(self) -> str:
        inputs = "; ".join(describe(spec) for spec in self.contract)
        return f"<{type(self).__name__}: {inputs}>"

    def feeds(self, inputs: Any) -> Feeds:
        """Whatever the caller gave, as checked arrays by input name."""
        if isinstance(inputs, Mapping):
            return check_feeds(inputs, self.contract)
        if len(self.contract) != 1:
            names = ", ".join(spec["name"] for spec in self.contract)
            raise OptbuildError(f"the artifact takes {len(self.contract)} inputs ({names}): pass a dict of arrays")
        spec = self.contract[0]
        if spec.get("preprocess") and not isinstance(inputs, np.ndarray):
            inputs = image_pixels(inputs, spec)  # a decoded image
        elif isinstance(inputs, np.ndarray) and spec.get("preprocess") and inputs.ndim == len(spec["shape"]) - 1:
            inputs = inputs[None]  # one image without its batch axis
        return check_feeds({spec["name"]: inputs}, self.contract)

    def image(self, image: Any) -> dict[str, np.ndarray]:
        """One decoded image of any size: the recipe's geometry on the client side (or only the
        centre cut when the artifact resizes inside), then the artifact."""
        if len(self.contract) != 1 or not self.contract[0].get("preprocess"):
            raise OptbuildError("this artifact does not take images: it takes "
                                f"{'; '.join(describe(s) for s in self.contract)}")
        spec = self.contract[0]
        return self._run(check_feeds({spec["name"]: image_pixels(image, spec)}, self.contract))

    def __call__(self, inputs: Any) -> dict[str, np.ndarray]:
        return self._run(self.feeds(inputs))

    def map(self, items: Iterable[Any], requests: int | None = None) -> list[dict[str, np.ndarray]]:
        """Outputs for many inputs, in order."""
        return [self(item) for item in items]

    @abstractmethod
    def _run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """The runtime on feeds that passed the contract: {output name: array}."""
