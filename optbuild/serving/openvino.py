"""An OpenVINO IR as a callable: client inputs in, named outputs out.

What `optbuild.load` returns for an intel artifact, and what the benchmark and validation
stages run, so that what is measured is what users call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError
from optbuild.serving.contract import Feeds, check_feeds, describe
from optbuild.serving.images import image_pixels


class ServedModel:
    """A runtime behind the input contract: `model(x)` takes a dict of arrays, one array (a
    one-input model), or a decoded image (PIL or 8-bit H×W×C; resized/cropped as the recipe says)
    and returns {output name: array}. Subclasses run checked feeds (`_run`)."""

    contract: list[dict[str, Any]]
    runtime_name = "model"

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
        spec = next((s for s in self.contract if s.get("preprocess")), None)
        if spec is None or len(self.contract) != 1:
            raise OptbuildError("this artifact does not take images: it takes "
                                f"{'; '.join(describe(s) for s in self.contract)}")
        return self._run(check_feeds({spec["name"]: image_pixels(image, spec)}, self.contract))

    def __call__(self, inputs: Any) -> dict[str, np.ndarray]:
        return self._run(self.feeds(inputs))

    def map(self, items: Iterable[Any], requests: int | None = None) -> list[dict[str, np.ndarray]]:
        """Outputs for many inputs, in order."""
        return [self(item) for item in items]

    def _run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        raise NotImplementedError


class OpenVINOModel(ServedModel):
    """The IR compiled with its runtime.json; `map` runs many inputs concurrently."""

    def __init__(self, model_xml: str, runtime: Mapping[str, Any], contract: list[dict[str, Any]],
                 core: Any = None) -> None:
        import openvino as ov

        self.contract = contract
        self.core = core or ov.Core()
        self.device, self.properties = runtime["device"], dict(runtime.get("properties", {}))
        self.compiled = self.core.compile_model(model_xml, self.device, self.properties)
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self._request = self.compiled.create_infer_request()

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} on {self.device} -> {', '.join(self.output_names)}>"

    def _run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        result = self._request.infer(feeds)
        return {name: np.array(result[port]) for name, port in zip(self.output_names, self.compiled.outputs)}

    def map(self, items: Iterable[Any], requests: int | None = None) -> list[dict[str, np.ndarray]]:
        """Outputs for many inputs, in order, through an AsyncInferQueue of `requests` parallel
        requests (default: what the device says is optimal for the compiled settings)."""
        import openvino as ov

        count = requests or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(self.compiled, max(1, count))
        results: dict[int, dict[str, np.ndarray]] = {}

        def done(request: Any, index: int) -> None:
            results[index] = {name: np.array(request.get_output_tensor(i).data)
                              for i, name in enumerate(self.output_names)}

        queue.set_callback(done)
        total = 0
        for index, item in enumerate(items):
            queue.start_async(self.feeds(item), userdata=index)
            total += 1
        queue.wait_all()
        return [results[i] for i in range(total)]
