"""An OpenVINO IR as a callable: client inputs in, named outputs out.

What `optbuild.load` returns for an intel artifact, and what the benchmark and validation
stages run, so that what is measured is what users call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optbuild.serving.contract import Feeds
from optbuild.serving.model import ServedModel


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
        for index, item in enumerate(items):
            queue.start_async(self.feeds(item), userdata=index)
        queue.wait_all()
        return [results[i] for i in sorted(results)]
