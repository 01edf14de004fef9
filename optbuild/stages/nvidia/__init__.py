"""The `nvidia` target: a strongly typed ONNX for TensorRT (precision in the graph), its checks
on CPU, and the TensorRT engine where TensorRT and a GPU exist, or else a build kit."""
