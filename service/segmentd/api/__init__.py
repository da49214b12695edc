"""gRPC servicers: decode the request, make one domain call, encode the answer."""
