"""Pure decisions for one spawn: who may use what, the form, the pod."""
