"""effcap's numerical library: models, datasets, the training engine and the analyses.

Pure library: it never imports gRPC. The server (`effcap.service`) and `effcap audit --local`
are thin shells around it.
"""
