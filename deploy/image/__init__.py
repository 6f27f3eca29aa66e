"""The Lambda inference image without Docker: a registry API v2 client and the model-layer append.

    from deploy.image import append_model, base_tag, ecr_registry, model_tag

    client = ecr_registry(ecr_client)                            # URL and credentials from ECR
    result = append_model(client, "greenlight-inference", base_tag(), model_dir, model_tag("fraud", 7))
    result.image_uri(client)    # 123456789012.dkr.ecr.eu-west-1.amazonaws.com/greenlight-inference@sha256:...

Modules: `refs` (names and tags, pure), `model_files` (which model files go in), `layer` (deterministic
layers), `manifest` (what Lambda accepts; the appended config and manifest, pure), `transport` (HTTP),
`auth` (credentials, ECR token, challenges), `registry` (the client), `append` (the orchestration),
`base_tag` (the base image's tag, also a script CodeBuild runs).
"""

from deploy.image.append import AppendResult, append_model, push_image, read_image
from deploy.image.auth import Anonymous, BasicCredentials, EcrCredentials
from deploy.image.base_tag import base_tag
from deploy.image.layer import Layer, LayerFile, build_layer
from deploy.image.manifest import Image
from deploy.image.model_files import MODEL_PATH, ModelFile, model_layer_files
from deploy.image.refs import Platform, model_tag
from deploy.image.registry import RegistryClient, RegistryStats, ecr_registry

__all__ = [
    "MODEL_PATH",
    "Anonymous",
    "AppendResult",
    "BasicCredentials",
    "EcrCredentials",
    "Image",
    "Layer",
    "LayerFile",
    "ModelFile",
    "Platform",
    "RegistryClient",
    "RegistryStats",
    "append_model",
    "base_tag",
    "build_layer",
    "ecr_registry",
    "model_layer_files",
    "model_tag",
    "push_image",
    "read_image",
]
