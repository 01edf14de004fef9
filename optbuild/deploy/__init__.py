"""`optbuild deploy`: model-server repositories (Triton, OpenVINO Model Server) made from a published,
checked artifact version. It reads what `optbuild.publish` wrote and never builds. See docs/deploy.md."""
