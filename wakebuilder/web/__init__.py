"""The exported model in a web page: live detection from the microphone with ONNX Runtime Web.

``build`` writes a self-contained folder (page, AudioWorklet, models, ONNX
Runtime Web's files), ``serve`` serves it on localhost, and ``browser`` drives
headless Chromium over the DevTools pipe for the tests and the benchmark.
"""
