"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from core.models.account_tokens import AccountRequest, AccountToken, TokenPurpose
from core.models.base import Base
from core.models.carts import CartCheckout, CartItem
from core.models.catalog import MovementKind, Product, StockMovement
from core.models.mail import CaughtMail
from core.models.notifications import Notification, NotificationStatus
from core.models.orders import (
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Reservation,
    ReservationStatus,
)
from core.models.payments import (
    Payment,
    PaymentStatus,
    SimulatorAttempt,
    SimulatorCharge,
    SimulatorRefund,
    SimulatorSwitch,
)
from core.models.product_images import ProductImage
from core.models.users import LoginFailure, RevokedToken, Role, User

__all__ = [
    "AccountRequest",
    "AccountToken",
    "Base",
    "CartCheckout",
    "CartItem",
    "CaughtMail",
    "LoginFailure",
    "MovementKind",
    "Notification",
    "NotificationStatus",
    "Order",
    "OrderEvent",
    "OrderItem",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "Product",
    "ProductImage",
    "Reservation",
    "ReservationStatus",
    "RevokedToken",
    "Role",
    "SimulatorAttempt",
    "SimulatorCharge",
    "SimulatorRefund",
    "SimulatorSwitch",
    "StockMovement",
    "TokenPurpose",
    "User",
]
